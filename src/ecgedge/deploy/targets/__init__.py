"""Where a model runs: the host, an emulated Raspberry-Pi-class CPU, a gateway. See :mod:`.base`."""
