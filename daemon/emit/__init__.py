"""The start of the path, ``logfan emit``: lines read from arguments or a pipe, published as
envelopes, each confirmed by the broker."""
