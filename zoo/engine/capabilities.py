"""What a zoo model can do, declared rather than discovered.

A model class lists its :class:`Capability` values in ``capabilities`` and says how
it is fitted in ``fitting``; the trainer, the CLI, the evaluator and the exporter ask
``model.supports(...)`` and never probe for attributes. Declaring a capability
obliges the class to define the methods listed in :data:`REQUIRED_METHODS`
(checked when the class is defined, so a typo fails at import, not in a user's run).
"""
import enum


class Capability(str, enum.Enum):
    """One thing a model can do (the methods it then must define are in
    :data:`REQUIRED_METHODS`)."""

    #: ``reconstruct(waveform [B, T]) -> [B, T]``: encode and decode.
    RECONSTRUCT = "reconstruct"
    #: ``convert(waveform) -> waveform``: translation into the target domain.
    CONVERT = "convert"
    #: ``sample(num, num_samples_audio, seed=None) -> [num, samples]``: draw from a prior.
    SAMPLE = "sample"
    #: ``encode(waveform) -> latents`` and ``decode(latents, ...) -> waveform``.
    ENCODE = "encode"
    #: a discrete prior's density: ``codes_of(waveform) -> int codes``,
    #: ``log_likelihood(waveform[, labels]) -> bits per code [B]`` and ``num_codes``.
    LIKELIHOOD = "likelihood"
    #: ``interpolate(a, b, steps) -> [steps, samples]``: decode between two latents.
    INTERPOLATE = "interpolate"
    #: block-by-block ``stream(block, state)`` equal to ``streaming_reference`` (the
    #: offline computation) for blocks of any multiple of ``stream_block`` samples.
    STREAM = "stream"
    #: training in stages (``stage_boundaries``, ``prepare_stage``): the trainer stops
    #: ``fit`` at each boundary so the model can switch stage and recompile.
    STAGES = "stages"
    #: a PCA of the latent space stored in the model (fidelity dimensions).
    LATENT_PCA = "latent_pca"
    #: trains on paired batches ``(domain A crops, domain B crops)``.
    PAIRED_DOMAINS = "paired_domains"
    #: trains on labelled inputs ``(crops, domain index)`` (any number of domains, no
    #: pairing); the model's ``domains`` must be the data's domain folders.
    DOMAIN_LABELS = "domain_labels"
    #: ``audio_examples(clips) -> {label: [n, samples]}`` for listening during training.
    EXAMPLES = "examples"
    #: ``stylize(content, style, ...)``: the content re-rendered with the style's texture.
    STYLIZE = "stylize"
    #: ``feature_maps(features) -> [maps [B, frames, C], ...]``: learned feature maps of the
    #: model's own normalised log-mel features (``frontend``), e.g. for style transfer.
    FEATURE_MAPS = "feature_maps"
    #: ``fit_subspaces(labelled)`` learns a latent subspace per labelled factor (pitch,
    #: formants) and ``edit(waveform, **factors)`` moves the audio along them.
    EDIT = "edit"

    def __str__(self):
        return self.value


class Fitting(str, enum.Enum):
    """How ``zoo train`` fits a model."""

    #: stochastic gradient descent through ``keras.Model.fit`` (single or adversarial).
    GRADIENT = "gradient"
    #: a closed form or EM on the training data: ``fit_closed_form(dataset, context)``.
    CLOSED_FORM = "closed_form"
    #: nothing to fit from a dataset (e.g. an optimiser run per input at use time).
    NONE = "none"

    def __str__(self):
        return self.value


#: Methods a class must define for each capability it declares.
REQUIRED_METHODS = {
    Capability.RECONSTRUCT: ("reconstruct",),
    Capability.CONVERT: ("convert",),
    Capability.SAMPLE: ("sample",),
    Capability.ENCODE: ("encode", "decode"),
    Capability.LIKELIHOOD: ("codes_of", "log_likelihood"),
    Capability.INTERPOLATE: ("interpolate",),
    Capability.STREAM: ("initial_state", "stream", "streaming_reference"),
    Capability.STAGES: ("stage_boundaries", "prepare_stage", "stage_description"),
    Capability.LATENT_PCA: ("latent_pca", "fit_latent_pca", "fidelity_report"),
    Capability.PAIRED_DOMAINS: ("split_domains",),
    Capability.DOMAIN_LABELS: ("check_domains",),
    Capability.EXAMPLES: ("audio_examples",),
    Capability.STYLIZE: ("stylize",),
    Capability.FEATURE_MAPS: ("feature_maps",),
    Capability.EDIT: ("fit_subspaces", "edit"),
}

#: What ``Fitting.CLOSED_FORM`` models must define.
CLOSED_FORM_METHODS = ("fit_closed_form",)
