"""Smoke-test the frozen app as built (``make package-test``; too slow for every test run).

In a fresh data folder, as a first run on a machine with no Python: ``--help`` and ``--version``,
``doctor``, routing (MiniLM and the bundled routing vectors), a terminal answer from the built-in
starter (assembled from the bundle, answered in the engine worker, a spawn child of the frozen
executable), and ``cadre serve`` answering a chat completion over HTTP. Exits 1 on the first failure.

Usage: python packaging/smoke.py
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

from build import executable

TIMEOUT_S = 300


class SmokeError(Exception):
    pass


def cadre(*args: str, env: dict[str, str], stdin: str = "") -> tuple[str, float]:
    """Run the frozen command; return its stdout and how long it took."""
    started = time.perf_counter()
    result = subprocess.run(
        [str(executable()), *args],
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
        check=False,
    )
    took = time.perf_counter() - started
    if result.returncode != 0:
        raise SmokeError(f"cadre {' '.join(args)} exited {result.returncode}:\n{result.stderr}")
    return result.stdout, took


def check_cli(env: dict[str, str]) -> None:
    from app import __version__

    out, took = cadre("--help", env=env)
    expect("usage: cadre" in out, "--help prints the usage")
    print(f"  --help in {took:.2f} s")
    out, _ = cadre("--version", env=env)
    expect(out.strip() == f"cadre {__version__}", f"--version says {__version__}: {out!r}")
    out, took = cadre("doctor", "--json", env=env)
    expect("data" in json.loads(out)["paths"], "doctor --json lists the data paths")
    print(f"  doctor in {took:.2f} s")


def check_routing(env: dict[str, str]) -> None:
    question = "Why does my Python function raise a KeyError when I read a dict?"
    out, took = cadre("route", "--among", "all", "--json", question, env=env)
    decision = json.loads(out)
    expect(decision["domain"] == "code", f"a Python question routes to code: {decision}")
    print(f"  route -> {decision['specialist']} ({decision['domain']}) in {took:.1f} s")


def check_answer(env: dict[str, str]) -> None:
    out, took = cadre("ask", "--specialist", "starter", "Say hello in one sentence.", env=env)
    expect(bool(out.strip()), "the starter answers in the terminal")
    print(f"  ask (first run: starter assembled, worker spawned) in {took:.1f} s: {out.strip()!r}")


def check_serve(env: dict[str, str]) -> None:
    server = subprocess.Popen(
        [str(executable()), "serve", "--port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().split("Cadre API:")[-1].strip()
        token = server.stdout.readline().split("Token:")[-1].strip()
        models = _request(f"{url}/models", token)
        expect(any(m["id"] == "starter" for m in models["data"]), "serve lists the starter")
        body = {"model": "starter", "messages": [{"role": "user", "content": "Hi"}]}
        reply = _request(f"{url}/chat/completions", token, body)
        content = reply["choices"][0]["message"]["content"]
        expect(bool(content.strip()), "serve answers a chat completion")
        print(f"  serve at {url}: {content.strip()!r}")
    finally:
        server.terminate()
        server.wait(timeout=30)


def _request(url: str, token: str, body: dict[str, object] | None = None) -> dict[str, object]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, headers={"Authorization": f"Bearer {token}"})
    if data is not None:
        request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
        result: dict[str, object] = json.load(response)
    return result


def expect(condition: bool, what: str) -> None:
    if not condition:
        raise SmokeError(f"failed: {what}")


def main() -> int:
    home = tempfile.mkdtemp(prefix="cadre-smoke-")
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "CADRE_HOME": home}
    print(f"smoke-testing {executable()} (data folder {home})")
    try:
        for check in (check_cli, check_routing, check_answer, check_serve):
            check(env)
    except (SmokeError, subprocess.TimeoutExpired, OSError, ValueError, KeyError) as exc:
        print(f"SMOKE TEST FAILED: {exc}", file=sys.stderr)
        return 1
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
