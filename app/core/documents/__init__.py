"""Local document Q&A. Reading a file starts in :mod:`.extract` (file to text blocks, or a reason to
skip it) and :mod:`.chunking` (text blocks to chunks with exact page and line citations)."""
