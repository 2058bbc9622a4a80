"""The toy zoo: tiny Llama checkpoints trained here on the toy objective (the embedded default pool)."""
