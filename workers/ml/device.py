"""Where a worker runs its model: CUDA with bf16 when present, CPU with fp32 otherwise."""


def pick_device():
    """Return (device, dtype). Imports torch lazily so the web process never initialises CUDA."""
    import torch

    if torch.cuda.is_available():
        return "cuda", torch.bfloat16
    # bf16 matmuls on CPUs without AMX are slower than fp32 and less accurate; keep fp32 there.
    return "cpu", torch.float32
