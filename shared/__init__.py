"""The shared kernel: envelope, event models, topology and bootstrap. No service's rules."""
