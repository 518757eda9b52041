"""The embedded broker (``filesystem://``): kombu's filesystem transport made crash-safe and fast
on backlogs; where envelopes wait when no RabbitMQ is used.

Layout under the ``root`` transport option (created as needed)::

    root/control/<exchange>.exchange    bindings in kombu's format, guarded by flock
    root/control/queues/<queue>.json    the arguments a queue was last declared with (its bounds)
    root/control/exclusive/<queue>      the connection (owner) an exclusive queue belongs to
    root/queues/<queue>/<stem>.msg      ready messages; the stem is <stamp>-<body bytes>, and stamps
                                        (ns, pid, counter) sort by publish
    root/inflight/<owner>/<queue>/      claimed, unsettled messages of one live connection

A publish writes ``<stem>.tmp`` then renames it to ``<stem>.msg``: no reader sees half a message.
A get lists its queue's folder once, keeps the sorted names, and claims the next by renaming it
into its connection's in-flight folder, whose ``owner.lock`` stays flocked while it lives. Ack
deletes the claimed file; requeue, reject(requeue=True) and channel close rename it back under its
stem as ``.redelivered.msg``. A transport opening its first channel returns the claims of every
owner whose lock is free (the process died, even by SIGKILL) to their queues: at-least-once.

Bounded queues, as on RabbitMQ: a queue declared with ``x-max-length`` (messages) and/or
``x-max-length-bytes`` (the total of the message bodies as published, without properties or
headers) keeps only its newest messages. After a publish makes it exceed a bound, the oldest
messages (in name order) are dead-lettered: with ``x-dead-letter-exchange: ""`` they move to the
queue named by ``x-dead-letter-routing-key`` (else by the message's own routing key) with an
``x-death`` header whose first entry says ``reason: maxlen``; without a dead-letter exchange they
are deleted. Only ``x-overflow: drop-head`` (the default) and the default exchange as dead-letter
exchange are supported; other values are refused when the queue is declared. Other arguments are
stored and ignored. Like RabbitMQ, only ready messages count: claimed (unacknowledged) ones do
not. Unlike RabbitMQ, declaring a queue again with other arguments is not an error: the last
declaration wins (an empty one removes the bounds), so a changed config never bricks a queue.
Rejected messages are not dead-lettered (logfan's consumer dead-letters lines itself).

Exclusive queues, as on RabbitMQ: a queue declared ``exclusive`` belongs to its connection and
is deleted (bindings in every exchange file, messages, folder, arguments) when the connection
closes, or, after its process died, by the next transport that opens its first channel on the
spool; another connection declaring it gets RESOURCE_LOCKED (a passive declare is allowed).
``auto_delete`` alone is not honoured. ``queue_delete`` deletes a queue the same way, for every
process. A fanout publish holds its exchange file's lock shared while it writes the copies, so
a delete, which removes the bindings under the exclusive lock first, never races a publish into
the folder it deletes. See ``exclusive``.

Every publishing process enforces the bounds stored under ``control/queues``. A dead-lettered
message is first claimed like a get (so a consumer or another publisher can never take it too),
rewritten with its ``x-death`` header into the dead-letter folder (``.tmp`` then rename), and only
then deleted from the claim: a crash in between returns the claim to its queue, so a message may
be dead-lettered and also kept, never lost. The bound is exact when the publishing connections
are closed; while several processes publish at once a queue may briefly exceed it (see
``Bounds``). Dead-lettered messages do not trigger their dead-letter queue's own bounds, and a
message that would be dead-lettered into its own queue is deleted.

Transport options: ``root`` (required); ``polling_interval`` (seconds between empty polls, default
0.05); ``fsync`` (default False): when true a publish fsyncs the message file and its folder
before returning, so a published message survives power loss, at some milliseconds per message.
Without it a crashed process loses nothing; a power loss may lose recent messages.
"""
