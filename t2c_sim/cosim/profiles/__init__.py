"""Interface profiles: how a DUT's operands and results move (backdoor, stream, axi)."""
