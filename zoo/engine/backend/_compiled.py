"""What the compiling backends (JAX, TensorFlow) share for ``@inference`` methods: array
arguments are traced, every other argument (lengths, counts, seeds, flags) is static
and part of the cache key of the compiled function. Arguments may be nested lists,
tuples and dicts (streaming states): their array leaves are traced too.

Also the hoisting of ``weight_constant``s out of a compiled function
(:class:`WeightConstants`): found by an abstract trace, computed once per weights by
a function of their own, passed in as arguments."""
import contextlib
import threading

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


def step_loop(lower, upper, body, init, compile_steps=False):
    """``ops.fori_loop``: compiled with the ``@inference`` method around it, so
    ``compile_steps`` has nothing to add here."""
    return keras.ops.fori_loop(lower, upper, body, init)


@contextlib.contextmanager
def thread_setting(local, name, value):
    """``local.<name> = value`` (a ``threading.local``) for the block; the outer value
    (``None`` if unset) is restored after it."""
    outer = getattr(local, name, None)
    setattr(local, name, value)
    try:
        yield
    finally:
        setattr(local, name, outer)


_hoisting = threading.local()  # .active: the WeightConstants of the function being traced


def weight_constant(owner, key, fn, weights):
    """``fn(*weights)``, or, inside a function whose constants are hoisted
    (:meth:`WeightConstants.providing`), the argument that carries it. Elsewhere
    (training, export, TensorFlow) it is computed as written."""
    constants = getattr(_hoisting, "active", None)
    if constants is None:
        return fn(*weights)
    return constants.lookup(owner, key, fn, weights)


def hoisted_constant(owner, key, fn, weights):
    """``weight_constant`` for code with a fallback of its own: the hoisted value inside
    a function whose constants are hoisted, else ``None`` (outside such a function, or
    for a constant its recording trace did not ask for: one that depends on shapes
    seen only later)."""
    constants = getattr(_hoisting, "active", None)
    if constants is None:
        return None
    return constants.lookup(owner, key, fn, weights, required=False)


class WeightConstants:
    """The ``weight_constant``s one compiled function uses, hoisted out of it.

    A weight-derived tensor computed inside a compiled inference function is computed
    on every call when the weights are arguments (the folded upsampling kernels were 38
    of RAVE v1's 131 ms decode on JAX). So: :meth:`record` finds them by an abstract
    trace, :meth:`compute` evaluates them all (by a compiled function of the weights,
    once per weights: the caller keeps the values while the weights are the same
    arrays), and the compiled function reads them as arguments
    (:meth:`providing`)."""

    def __init__(self):
        self.specs = {}            # (id(owner), key) -> (owner, key, fn, weights)
        self._provided = None      # while providing: (id(owner), key) -> value

    def lookup(self, owner, key, fn, weights, required=True):
        name = (id(owner), key)
        if self._provided is None:  # recording
            self.specs.setdefault(name, (owner, key, fn, weights))
            return fn(*weights)
        if not required and name not in self._provided:
            return None
        return self._provided[name]

    def _active(self):
        return thread_setting(_hoisting, "active", self)

    def record(self, trace):
        """Run ``trace()`` (an abstract evaluation of the function) and keep the
        constants it asks for."""
        with self._active():
            trace()
        return self

    def compute(self):
        """The values of every constant, in :attr:`specs` order (call it where the
        weights are readable: a stateless scope, or eagerly)."""
        return [fn(*weights) for _, _, fn, weights in self.specs.values()]

    @contextlib.contextmanager
    def providing(self, values):
        """Inside: each ``weight_constant`` returns its entry of ``values``."""
        self._provided = dict(zip(self.specs, values))
        try:
            with self._active():
                yield
        finally:
            self._provided = None

    def weights(self):
        """Every variable the constants are derived from (to tell when they change)."""
        return [w for _, _, _, ws in self.specs.values() for w in ws]
