"""Agreement with reference scores: ``her2fast evaluate`` and its reports."""
