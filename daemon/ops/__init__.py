"""Beside the path, for operators: the figures the daemon reports (STATUS=, the status file,
``logfan status``) and ``logfan check --probe``."""
