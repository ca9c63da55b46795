def total(path):
    with open(path) as f:
        next(f)
        return sum(int(l) for l in f)
