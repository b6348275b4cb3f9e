"""What TensorFlow and torch share: variables are updated in place (no state pytree to
sync) and the test step evaluates objectives statefully."""


def sync_state(model):
    """Nothing to do: ``fit`` updates the variables in place."""


def make_adversarial_train_function(model, force):
    """Keep Keras' own train function."""
    return None


def adversarial_test_step(model, args):
    return model._stateful_test_step(model._unpack(args[-1]))


def replica_loss(loss):
    """Unchanged: one replica (JAX shards one program; torch trains on one device)."""
    return loss


def process_layout():
    """``(0, 1)``: one process (multi-worker training is not wired for this backend)."""
    return 0, 1


def distribute_input(dataset):
    """Unchanged: no multi-worker input pipeline on this backend."""
    return dataset
