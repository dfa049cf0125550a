"""Leader election: exactly one operator process reconciles at a time (issue 9, item 9).

:mod:`.decision` holds who may hold the Lease (pure); :mod:`.elector` reads and writes the
``coordination.k8s.io/v1`` Lease and stops a leader that can no longer renew it.
"""
