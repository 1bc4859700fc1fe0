"""Customise a specialist: its system prompt, its sampling and its context size.

A form over :class:`Customisation`. It shows the specialist as it is now, *Restore defaults* puts
the manifest's own values back in the fields, and Save hands the form to ``save`` (the core checks
it with the loader's rules and writes it); a mistake is shown under the form and the dialog stays.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import (
    QAbstractSpinBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.core.errors import CadreError
from app.core.specialist_overrides import LABELS, Customisation
from app.ui.access import buddy, mnemonic, tab_as_shown
from app.ui.context_spin import ContextSpin
from specialists.loader import CONTEXT_BOUNDS, SAMPLING_BOUNDS, Sampling, SpecialistManifest

# What each value does, in a line; a float's step (each shows two decimals).
FLOATS = {
    "temperature": (0.05, "Higher is more varied, lower more focused; 0 is the likeliest only."),
    "top_p": (0.05, "Only the likeliest words that together make up this share are considered."),
    "min_p": (0.01, "Words less likely than this share of the likeliest are dropped; 0 is off."),
    "repeat_penalty": (0.05, "Discourages repeating recent words; 1 is no penalty."),
}
INTS = {
    "top_k": "Only this many of the likeliest words are considered; 0 is no limit.",
    "max_tokens": "The longest reply, in tokens (about ¾ of a word each).",
}
CONTEXT_NOTE = (
    "How much of the conversation the model keeps in view. More needs more memory; the model "
    "reloads with the new size on the next message."
)
Spin = QSpinBox | QDoubleSpinBox
BEYOND_TRAINING = (
    "The model will run with {size} tokens, more than the {trained} it was trained on. Unless it "
    "scales RoPE to reach further, its replies may lose track or turn to nonsense beyond that."
)
KEYS = {  # each field's Alt key (S: the system prompt, C: the context size)
    "temperature": "T",
    "top_p": "P",
    "top_k": "K",
    "min_p": "M",
    "repeat_penalty": "R",
    "max_tokens": "X",
}


class CustomiseDialog(QDialog):
    def __init__(
        self,
        defaults: SpecialistManifest,
        current: SpecialistManifest,
        save: Callable[[Customisation], None],
        parent: QWidget | None = None,
        *,
        context_cap: int | None = None,
    ) -> None:
        """``defaults``: the specialist as its manifest has it; ``current``: with the user's
        override; ``context_cap``: the Settings limit on every context size, if any."""
        super().__init__(parent)
        self.setWindowTitle(f"Customise {defaults.name}")
        self.resize(600, 0)
        self._defaults = Customisation.of(defaults)
        self._save = save
        self.system_prompt = QPlainTextEdit()
        self.spins: dict[str, Spin] = {}
        self.context_size = ContextSpin(CONTEXT_BOUNDS)
        self.error = QLabel()
        self.trained_context = QLabel()  # filled in once the model's header is read
        self.context_warning = QLabel()
        self._context_form = QFormLayout()
        self._context_cap = context_cap
        self._trained: int | None = None
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Save
            | QDialogButtonBox.StandardButton.Cancel
            | QDialogButtonBox.StandardButton.RestoreDefaults
        )
        self._exact: dict[str, tuple[float, float]] = {}  # key: (value shown, value it stands for)
        self._build(defaults.name, context_cap)
        self.show_values(Customisation.of(current))

    def _build(self, name: str, context_cap: int | None) -> None:
        intro = QLabel(
            f"{name} uses these in every chat: in this window, in cadre ask and cadre chat, and "
            "through the local API. Its own manifest is left as it is."
        )
        intro.setWordWrap(True)
        self.system_prompt.setTabChangesFocus(True)
        self.system_prompt.setMinimumHeight(self.fontMetrics().lineSpacing() * 6)
        prompt = QVBoxLayout()
        prompt.addWidget(buddy(mnemonic(f"{LABELS['system_prompt']}:", "S"), self.system_prompt))
        prompt.addWidget(self.system_prompt)
        self.error.setWordWrap(True)
        self.error.setStyleSheet("color: #d9534f")
        outer = QVBoxLayout(self)
        outer.addWidget(intro)
        outer.addLayout(prompt, 1)
        outer.addWidget(self._sampling_group())
        outer.addWidget(self._context_group(context_cap))
        outer.addWidget(self.error)
        outer.addWidget(self.buttons)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        restore = self.buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults)
        restore.clicked.connect(self.restore_defaults)
        tab_as_shown(self.buttons)

    def _sampling_group(self) -> QGroupBox:
        """Two columns of spin boxes, each with its range and default in a tooltip."""
        columns = (QFormLayout(), QFormLayout())
        keys = ("temperature", "top_p", "top_k", "min_p", "repeat_penalty", "max_tokens")
        for index, key in enumerate(keys):
            spin = self.spins[key] = self._spin(key)
            columns[index % 2].addRow(mnemonic(f"{LABELS[key]}:", KEYS[key]), spin)
        row = QHBoxLayout()
        for column in columns:
            row.addLayout(column, 1)
        group = QGroupBox("Sampling")
        group.setLayout(row)
        return group

    def _spin(self, key: str) -> Spin:
        low, high = SAMPLING_BOUNDS[key]
        default = getattr(self._defaults.sampling, key)
        spin: Spin
        if key in FLOATS:
            step, what = FLOATS[key]
            spin = QDoubleSpinBox()
            spin.setDecimals(2)
            spin.setSingleStep(step)
            spin.setRange(low, high)
        else:
            spin, what = QSpinBox(), INTS[key]
            spin.setRange(int(low), int(high))
        spin.setCorrectionMode(QAbstractSpinBox.CorrectionMode.CorrectToNearestValue)
        spin.setToolTip(f"{what}\nFrom {low:g} to {high:g}; the default is {default:g}.")
        return spin

    def _context_group(self, context_cap: int | None) -> QGroupBox:
        note = CONTEXT_NOTE
        if context_cap is not None:
            note += f" Settings limit every context to {context_cap} tokens."
        label = QLabel(note)
        label.setWordWrap(True)
        self.context_size.setToolTip(f"The default is {self._defaults.context_size} tokens.")
        self.context_warning.setWordWrap(True)
        self.context_warning.setStyleSheet("color: #b36b00")
        form = self._context_form
        form.addRow(mnemonic(f"{LABELS['context_size']}:", "C"), self.context_size)
        form.addRow("Model trained on:", self.trained_context)
        form.addRow(self.context_warning)
        form.addRow(label)
        for row in (self.trained_context, self.context_warning):
            form.setRowVisible(row, False)
        self.context_size.valueChanged.connect(self._check_context)
        group = QGroupBox("Memory")
        group.setLayout(form)
        return group

    def show_trained_context(self, tokens: int | None) -> None:
        """The context length the model was trained on, read off the GUI thread after the dialog
        opens; ``None`` (not downloaded yet, or the file does not say) leaves the row hidden."""
        self._trained = tokens
        self.trained_context.setText(f"{tokens} tokens" if tokens else "")
        self._context_form.setRowVisible(self.trained_context, tokens is not None)
        self._check_context()
        self._grow_to_fit()

    def _check_context(self) -> None:
        """Warn, never refuse, when the model would run beyond its trained context (as capped by
        Settings): a model that scales RoPE can, most lose track."""
        size = self.context_size.value()
        if self._context_cap is not None:
            size = min(size, self._context_cap)
        beyond = self._trained is not None and size > self._trained
        self.context_warning.setText(
            BEYOND_TRAINING.format(size=size, trained=self._trained) if beyond else ""
        )
        if beyond != self._context_form.isRowVisible(self.context_warning):
            self._context_form.setRowVisible(self.context_warning, beyond)
            self._grow_to_fit()

    def _grow_to_fit(self) -> None:
        """At least as tall as the layout needs at this width: a top-level window does not
        follow a wrapped label's height by itself, so the fields would be squeezed."""
        layout = self.layout()
        wanted = layout.totalMinimumHeightForWidth(self.width()) if layout is not None else 0
        if wanted > self.height():
            self.resize(self.width(), wanted)

    def show_values(self, values: Customisation) -> None:
        self.system_prompt.setPlainText(values.system_prompt)
        self.context_size.setValue(values.context_size)
        for key, spin in self.spins.items():
            exact = getattr(values.sampling, key)
            spin.setValue(exact)
            self._exact[key] = (spin.value(), exact)
        self.error.clear()

    def restore_defaults(self) -> None:
        """The manifest's values in the fields; Save makes them stick (Cancel keeps yours)."""
        self.show_values(self._defaults)

    def customisation(self) -> Customisation:
        """The form's values. A field left as shown keeps the exact value it stood for, so a
        default with more decimals than the field shows is not taken for a change."""
        values: dict[str, float] = {}
        for key, spin in self.spins.items():
            shown, exact = self._exact[key]
            values[key] = exact if spin.value() == shown else spin.value()
        sampling = Sampling(**{k: type(getattr(Sampling, k))(v) for k, v in values.items()})
        return Customisation(self.system_prompt.toPlainText(), self.context_size.value(), sampling)

    def accept(self) -> None:
        try:
            self._save(self.customisation())
        except CadreError as exc:
            self.show_error(exc.message + (f" {exc.hint}" if exc.hint else ""))
            return
        super().accept()

    def show_error(self, text: str) -> None:
        """Under the form; the dialog grows to fit it (a top-level window does not follow a
        wrapped label's height by itself, so the fields above would be squeezed)."""
        self.error.setText(text)
        self._grow_to_fit()
