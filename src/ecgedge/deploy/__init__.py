"""From exported model files to a gateway that runs them, trusted and reversible.

* :mod:`.keys` -- ``ecgedge keys generate``: an Ed25519 signing pair;
* :mod:`.bundle` (+ :mod:`.golden`) -- ``ecgedge bundle``: model files, a signed manifest and
  golden vectors in one tar;
* :mod:`.targets` -- where a bundle goes (``local:DIR``, ``ssh://USER@HOST[:PORT]/DIR``);
* :mod:`.rollout` -- ``ecgedge deploy``: upload, on-target verification and self-test, atomic
  switch, service restart and health check, automatic rollback; ``--rollback``, ``--status``.

The gateway's half (verify, install, self-test, switch) is :mod:`ecgedge.firmware_host`, run on
the target as ``python -m ecgedge.firmware_host``, so a gateway needs none of the host tooling.
"""
