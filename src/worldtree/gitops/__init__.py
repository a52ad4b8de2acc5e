"""GitOps (seed 002, issue 10): webhooks in, ``ci.yaml`` runs out, commit statuses back; schedules.

* :mod:`.payloads` — pydantic models of the GitHub, GitLab and Gitea events worldtree acts on;
* :mod:`.signatures` — each provider's webhook authentication;
* :mod:`.triggers` — ``on:`` evaluated as GitHub Actions does (branches, tags, paths, types);
* :mod:`.repos` — registering repositories (secrets encrypted);
* :mod:`.gateway` — a webhook delivery accepted, stored once, queued;
* :mod:`.checkout` — cached bare mirrors and a checkout of the commit for the run's workspace;
* :mod:`.generator` — the consumer: delivery → pipeline file → ``on:`` → run;
* :mod:`.status` — commit statuses posted back, retried with backoff;
* :mod:`.schedules` — ``on.schedule`` crons fired once per tick across replicas;
* :mod:`.nats_queue` — deliveries over NATS JetStream (``worldtree server --events nats://…``);
* :mod:`.runtime` — the server's threads: consumers, status reporter, scheduler.

It sits above the application layer (it submits runs through :mod:`worldtree.app.service`) and
below the server, whose routes (``routes_webhooks``, ``routes_repos``) only translate HTTP.
"""
