"""What the compiling backends (JAX, TensorFlow) share for ``@inference`` methods: array
arguments are traced, every other argument (lengths, counts, seeds, flags) is static
and part of the cache key of the compiled function. Arguments may be nested lists,
tuples and dicts (streaming states): their array leaves are traced too."""
import keras


class CompiledCall:
    """One call's arguments split into traced arrays and a static cache key.

    Args:
        method: the undecorated method.
        args, kwargs: the call's arguments.
        is_array: predicate telling traced leaves from static ones.
    """

    def __init__(self, method, args, kwargs, is_array):
        nest = (list(args), dict(kwargs))
        flat = keras.tree.flatten(nest)
        self.method = method
        self.skeleton = keras.tree.map_structure(lambda _: 0, nest)
        self.mask = [bool(is_array(a)) for a in flat]
        self.arrays = [a for a, arr in zip(flat, self.mask) if arr]
        self.template = [None if arr else a for a, arr in zip(flat, self.mask)]
        static = tuple((i, a) for i, a in enumerate(self.template) if not self.mask[i])
        self.key = (method.__name__, _structure(nest), static, tuple(self.mask))

    def runner(self):
        """``run(model, arrays)``: the method with ``arrays`` in place of the traced
        leaves (holds the static arguments, not this call's arrays)."""
        method, skeleton, template, mask = self.method, self.skeleton, self.template, self.mask

        def run(model, arrays):
            it = iter(arrays)
            full = [next(it) if arr else a for a, arr in zip(template, mask)]
            args, kwargs = keras.tree.pack_sequence_as(skeleton, full)
            return method(model, *args, **kwargs)

        return run


def _structure(tree):
    """A hashable description of a nested argument's containers, independent of dict
    insertion order: a state dict that went through ``jax.jit`` comes back with its
    keys sorted, and must find the function compiled for the original (the leaves are
    flattened in sorted-key order either way)."""
    if isinstance(tree, dict):
        return ("dict", tuple((k, _structure(tree[k])) for k in sorted(tree)))
    if isinstance(tree, (list, tuple)):
        return (type(tree).__name__, tuple(_structure(v) for v in tree))
    return 0


def cached(model, key, build):
    """The compiled function of ``key`` in the model's inference cache (built once)."""
    cache = model.__dict__.setdefault("_inference_cache", {})
    if key not in cache:
        cache[key] = build()
    return cache[key]
