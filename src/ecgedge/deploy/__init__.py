"""Deploy: getting an exported model onto a gateway and checking it there (above ``firmware_host``)."""
