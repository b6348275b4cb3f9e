"""What the compiling backends (JAX, TensorFlow) share for ``@inference`` methods: array
arguments are traced, every other argument (lengths, counts, seeds, flags) is static
and part of the cache key of the compiled function."""


class CompiledCall:
    """One call's arguments split into traced arrays and a static cache key.

    Args:
        method: the undecorated method.
        args, kwargs: the call's arguments.
        is_array: predicate telling traced arguments from static ones.
    """

    def __init__(self, method, args, kwargs, is_array):
        self.method, self.n_args, self.names = method, len(args), sorted(kwargs)
        flat = list(args) + [kwargs[k] for k in self.names]
        self.mask = [bool(is_array(a)) for a in flat]
        self.arrays = [a for a, arr in zip(flat, self.mask) if arr]
        self.template = [None if arr else a for a, arr in zip(flat, self.mask)]
        static = tuple((i, a) for i, a in enumerate(self.template) if not self.mask[i])
        self.key = (method.__name__, self.n_args, tuple(self.names), static,
                    tuple(self.mask))

    def runner(self):
        """``run(model, arrays)``: the method with ``arrays`` in place of the traced
        arguments (holds the static arguments, not this call's arrays)."""
        method, n_args, names = self.method, self.n_args, self.names
        template, mask = self.template, self.mask

        def run(model, arrays):
            it = iter(arrays)
            full = [next(it) if arr else a for a, arr in zip(template, mask)]
            return method(model, *full[:n_args], **dict(zip(names, full[n_args:])))

        return run


def cached(model, key, build):
    """The compiled function of ``key`` in the model's inference cache (built once)."""
    cache = model.__dict__.setdefault("_inference_cache", {})
    if key not in cache:
        cache[key] = build()
    return cache[key]
