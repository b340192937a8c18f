"""Model registry: a config section per model, built from the model's own dataclass fields."""

from __future__ import annotations

import dataclasses
import difflib
import importlib

import flax.linen as nn
import ml_collections

from jaxai.errors import ConfigError

# name -> "module:Class"; modules are imported only when used.
_REGISTRY = {
    "mlp": "jaxai.models.mlp:MLP",
    "cnn": "jaxai.models.cnn:CNN",
    "gpt": "jaxai.models.transformer:GPT",
    "rnn": "jaxai.models.rnn:RNNLM",
    "skipgram": "jaxai.models.word2vec:SkipGram",
    "vae": "jaxai.models.vae:VAE",
    "gan_mlp": "jaxai.models.gan:MLPGAN",
    "dcgan": "jaxai.models.gan:DCGAN",
    "resnet": "jaxai.models.resnet:ResNet",
    "vgg": "jaxai.models.vgg:VGG",
    "encoder_decoder": "jaxai.models.encoder_decoder:EncoderDecoder",
    "lstm_seq2seq": "jaxai.models.seq2seq_rnn:LSTMSeq2Seq",
    "lstm_forecaster": "jaxai.models.forecaster:LSTMForecaster",
    "q_mlp": "jaxai.models.q_networks:QMLP",
    "q_minatar": "jaxai.models.q_networks:MinAtarQNetwork",
    "q_nature": "jaxai.models.q_networks:NatureQNetwork",
}
# Sizes that come from the data (set by the task), and linen internals: never config keys.
_NOT_CONFIGURABLE = {"parent", "name", "num_classes", "vocab_size", "decode", "image_shape", "horizon", "num_actions"}


def model_class(name: str) -> type[nn.Module]:
    """The linen Module class registered under `name`."""
    if name not in _REGISTRY:
        close = difflib.get_close_matches(name, _REGISTRY, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"Unknown model {name!r}.{hint} Known models: {sorted(_REGISTRY)}.")
    module_name, class_name = _REGISTRY[name].split(":")
    return getattr(importlib.import_module(module_name), class_name)


def model_config(name: str) -> ml_collections.ConfigDict:
    """A config section with `name` and every constructor field of the model at its default."""
    config = ml_collections.ConfigDict({"name": name})
    for field in dataclasses.fields(model_class(name)):
        if field.name in _NOT_CONFIGURABLE or not field.init:
            continue
        if field.default is dataclasses.MISSING:
            raise TypeError(f"Model field {name}.{field.name} needs a default to be configurable.")
        config[field.name] = field.default
    return config


def build_model(config: ml_collections.ConfigDict, **fields) -> nn.Module:
    """Instantiates the model a config section describes; `fields` fill data-derived sizes."""
    kwargs = {key: value for key, value in config.items() if key != "name"}
    kwargs.update(fields)
    return model_class(config.name)(**kwargs)
