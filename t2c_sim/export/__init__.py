"""Layer records <-> files (.npz + JSON manifest, $readmemh hex): the owner of bit packing."""

from t2c_sim.export.hexfile import pack_words, read_memh, unpack_words, write_memh
from t2c_sim.export.records import load_network, load_record, save_network, save_record

__all__ = ["pack_words", "unpack_words", "write_memh", "read_memh", "save_record", "load_record",
           "save_network", "load_network"]
