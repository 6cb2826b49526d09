"""placeholder"""
def run_stream(*a, **k):
    raise NotImplementedError
