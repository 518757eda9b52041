"""logfan's daemon and commands, one subpackage per stage of the data path.

``emit`` publishes lines as envelopes; ``broker`` connects and declares (``broker.spool`` is the
embedded broker); ``consume`` turns one sink's deliveries into written, acknowledged batches;
``run`` supervises a worker process per sink; ``config`` reads the file; ``ops`` answers
``logfan status`` and ``check --probe``. ``cli`` is the ``logfan`` command.
"""
