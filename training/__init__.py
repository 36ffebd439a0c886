"""Training code for her2fast's networks (PyTorch). The ``her2fast`` package never imports this."""
