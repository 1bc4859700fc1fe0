"""The inference engine: llama.cpp in a worker process, driven through a small typed protocol."""
