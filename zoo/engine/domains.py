"""Domain labels: what every model conditioned on its data's domain folders shares."""
import numpy as np

from zoo.errors import ZooError


def domain_names(domains, at_least=2):
    """``domains`` as a tuple of distinct names; ValueError naming the argument."""
    names = tuple(str(d) for d in domains)
    if len(names) < at_least or len(set(names)) != len(names):
        raise ValueError(f"domains must name {at_least} or more distinct domains, got "
                         f"{list(domains)!r}")
    return names


class DomainLabels:
    """Mixin of models fed ``(waveforms, domain indices)`` (``Capability.DOMAIN_LABELS``).

    The model sets ``self.domains`` (names in the order of the data's domain folders,
    sorted); the trainer calls :meth:`check_domains` with the data's folders and then
    feeds ``(crops, int32 labels)``.
    """

    domains = ()

    def index(self, domain):
        """A domain's label index (name or index)."""
        if isinstance(domain, (int, np.integer)) and 0 <= int(domain) < len(self.domains):
            return int(domain)
        if str(domain) not in self.domains:
            known = ", ".join(self.domains) or "no domains (an unconditional model)"
            raise ZooError(f"unknown domain {domain!r}; this model knows {known}")
        return self.domains.index(str(domain))

    def split_inputs(self, inputs):
        """Model inputs -> ``(waveform, labels)``; ``labels`` None for waveforms alone."""
        if isinstance(inputs, (list, tuple)) and len(inputs) == 2:
            return inputs[0], inputs[1]
        return inputs, None

    def check_domains(self, data_domains):
        """The data's domain folders must be this model's ``domains``, in order."""
        if list(data_domains) != list(self.domains):
            raise ZooError(f"the data's domains {list(data_domains)} are not the model's "
                           f"{list(self.domains)}; set model_config.domains to the domain folders "
                           "(sorted)")
