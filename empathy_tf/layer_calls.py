"""Swapping the `call` of individual Keras layers (our kernels), and undoing it.

The fused kernels (hash dropout, float32 bias gradients) replace the `call` of layer instances
inside an already built model, so weights, configs and checkpoints stay Keras' own; the class
and every other instance are untouched.
"""

import types


def replace_calls(model, call_for):
    """Sets `layer.call = call_for(layer)` on every layer inside `model` where that is not None.

    `call_for(layer)` returns a function taking (layer, inputs, training=None), or None to leave
    the layer alone. Returns the number of layers changed.
    """
    changed = 0
    for layer in model._flatten_layers(include_self=True, recursive=True):
        call = call_for(layer)
        if call is not None:
            layer.call = types.MethodType(call, layer)
            changed += 1
    return changed


def restore_calls(model, calls):
    """Gives back the class's `call` to every layer inside `model` whose call is one of `calls`.

    Returns the number of layers restored.
    """
    restored = 0
    for layer in model._flatten_layers(include_self=True, recursive=True):
        if getattr(vars(layer).get("call"), "__func__", None) in calls:
            del layer.call
            restored += 1
    return restored
