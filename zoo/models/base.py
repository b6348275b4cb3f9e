"""Behaviour every zoo model shares."""
import keras


class SeedStateMixin:
    """Save and restore the state of every ``keras.random.SeedGenerator`` with the model.

    Keras does not write seed-generator states into ``.keras`` files, so a resumed
    run would replay the random draws (posterior samples, noise) of step 0. This
    mixin adds them to the model's own variables in the weights file, under keys
    ``seed:<i>``, so checkpoints resume the random stream exactly.
    """

    def _seed_states(self):
        return [v for v in self.variables if v.path.endswith("seed_generator_state")]

    def save_own_variables(self, store):
        super().save_own_variables(store)
        for i, variable in enumerate(self._seed_states()):
            store[f"seed:{i}"] = variable

    def load_own_variables(self, store):
        seeds = self._seed_states()
        own = {}
        for key in store.keys():
            if key.startswith("seed:"):
                index = int(key[5:])
                if index < len(seeds):
                    seeds[index].assign(store[key])
            else:
                own[key] = store[key]
        super().load_own_variables(own)


class ZooModel(SeedStateMixin, keras.Model):
    """Base class of zoo models: a ``keras.Model`` whose checkpoints include seed states."""
