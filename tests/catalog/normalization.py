"""Mistake catalog for `normalization`: the errors of a first layer-norm / group-norm implementation
(most of them batch-norm habits taken along to the wrong axes)."""
from . import Mistake

# A correct layer-norm forward pass with a staged backward, reused (with one line changed).
_LN = '''
def layernorm_forward(x, gamma, beta, ln_param):
    eps = ln_param.get("eps", 1e-5)
    mu = x.mean(axis=1, keepdims=True)
    var = x.var(axis=1, keepdims=True)
    std = np.sqrt(var + eps)
    xhat = (x - mu) / std
    out = gamma * xhat + beta
    return out, (x - mu, var, eps, xhat, gamma)


def layernorm_backward(dout, cache):
    xc, var, eps, xhat, gamma = cache
    D = xc.shape[1]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    dvar = np.sum(dxhat * xc, axis=1, keepdims=True) * -0.5 * (var + eps) ** -1.5
    dmu = np.sum(-dxhat / np.sqrt(var + eps), axis=1, keepdims=True) + dvar * np.mean(-2 * xc, axis=1, keepdims=True)
    dx = dxhat / np.sqrt(var + eps) + dvar * 2 * xc / D + dmu / D
    return dx, dgamma, dbeta
'''


def _ln(old: str, new: str) -> str:
    assert old in _LN, old
    return _LN.replace(old, new)


# A correct group-norm forward pass (staged backward through the (N, G, M) view).
_GN = '''
def spatial_groupnorm_forward(x, gamma, beta, G, gn_param):
    N, C, H, W = x.shape
    if C % G != 0:
        raise ValueError("G must divide C")
    eps = gn_param.get("eps", 1e-5)
    xg = x.reshape(N, G, -1)
    mu = xg.mean(axis=2, keepdims=True)
    var = xg.var(axis=2, keepdims=True)
    xhat = ((xg - mu) / np.sqrt(var + eps)).reshape(N, C, H, W)
    out = xhat * gamma.reshape(1, C, 1, 1) + beta.reshape(1, C, 1, 1)
    return out, (xhat, var, eps, gamma, G)


def spatial_groupnorm_backward(dout, cache):
    xhat, var, eps, gamma, G = cache
    N, C, H, W = dout.shape
    dbeta = dout.sum(axis=(0, 2, 3))
    dgamma = (dout * xhat).sum(axis=(0, 2, 3))
    g = (dout * gamma.reshape(1, C, 1, 1)).reshape(N, G, -1)
    xh = xhat.reshape(N, G, -1)
    M = g.shape[2]
    dx = (g - g.mean(axis=2, keepdims=True) - xh * (g * xh).mean(axis=2, keepdims=True)) / np.sqrt(var + eps)
    return dx.reshape(N, C, H, W), dgamma, dbeta
'''


def _gn(old: str, new: str) -> str:
    assert old in _GN, old
    return _GN.replace(old, new)


# A correct GroupNorm module, reused with one line changed.
_MODULE = '''
class GroupNorm(nn.Module):
    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True):
        super().__init__()
        if num_channels % num_groups != 0:
            raise ValueError("num_groups must divide num_channels")
        self.num_groups, self.eps, self.affine = num_groups, eps, affine
        if affine:
            self.weight = nn.Parameter(torch.ones(num_channels))
            self.bias = nn.Parameter(torch.zeros(num_channels))
        else:
            self.register_parameter("weight", None)
            self.register_parameter("bias", None)

    def forward(self, x):
        N, C, H, W = x.shape
        xg = x.reshape(N, self.num_groups, -1)
        mean = xg.mean(dim=2, keepdim=True)
        var = xg.var(dim=2, keepdim=True, correction=0)
        xhat = ((xg - mean) / torch.sqrt(var + self.eps)).reshape(N, C, H, W)
        if self.affine:
            return xhat * self.weight.view(1, C, 1, 1) + self.bias.view(1, C, 1, 1)
        return xhat
'''


def _module(old: str, new: str) -> str:
    assert old in _MODULE, old
    return _MODULE.replace(old, new)


MISTAKES = [
    # ---- layer norm, forward
    Mistake("ln_batch_axis", _ln("mu = x.mean(axis=1, keepdims=True)\n    var = x.var(axis=1, keepdims=True)",
                                 "mu = x.mean(axis=0, keepdims=True)\n    var = x.var(axis=0, keepdims=True)"),
            "layernorm_forward", "as batch norm does"),
    Mistake("ln_eps_outside_sqrt", _ln("std = np.sqrt(var + eps)", "std = np.sqrt(var) + eps"),
            "layernorm_forward", "eps is outside the square root"),
    Mistake("ln_unbiased", _ln("var = x.var(axis=1, keepdims=True)", "var = x.var(axis=1, keepdims=True, ddof=1)"),
            "layernorm_forward", "UNBIASED variance"),
    Mistake("ln_no_keepdims", _ln("mu = x.mean(axis=1, keepdims=True)\n    var = x.var(axis=1, keepdims=True)",
                                  "mu = x.mean(axis=1)\n    var = x.var(axis=1)"),
            "layernorm_forward", "keepdims=True"),
    Mistake("ln_eps_param_ignored", _ln('eps = ln_param.get("eps", 1e-5)', "eps = 1e-5"),
            "layernorm_forward", "you ignore ln_param['eps']"),
    Mistake("ln_var_shortcut", _ln("var = x.var(axis=1, keepdims=True)",
                                   "var = (x ** 2).mean(axis=1, keepdims=True) - mu ** 2"),
            "layernorm_forward", "catastrophic cancellation"),
    Mistake("ln_uses_torch", _ln("var = x.var(axis=1, keepdims=True)",
                                 "var = __import__('torch').from_numpy(x).var(1, keepdim=True, correction=0).numpy()"),
            "layernorm_forward", "deep-learning framework", flag="forbidden"),
    # ---- layer norm, backward
    Mistake("ln_bwd_no_dvar_path", _ln("dx = dxhat / np.sqrt(var + eps) + dvar * 2 * xc / D + dmu / D",
                                       "dx = dxhat / np.sqrt(var + eps) + dmu / D"),
            "layernorm_backward", "path through the variance is missing"),
    Mistake("ln_bwd_no_dmean_path", _ln("dx = dxhat / np.sqrt(var + eps) + dvar * 2 * xc / D + dmu / D",
                                        "dx = dxhat / np.sqrt(var + eps) + dvar * 2 * xc / D"),
            "layernorm_backward", "path through the mean is missing"),
    Mistake("ln_bwd_dgamma_over_features", _ln("dgamma = (dout * xhat).sum(axis=0)", "dgamma = (dout * xhat).sum(axis=1)"),
            "layernorm_backward", "dgamma is"),
    Mistake("ln_bwd_var_derivative_d_minus_1", _ln("dvar * 2 * xc / D", "dvar * 2 * xc / (D - 1)"),
            "layernorm_backward", "1/(m - 1)"),
    Mistake("ln_bwd_correct_but_forward_unbiased",
            _ln("var = x.var(axis=1, keepdims=True)", "var = x.var(axis=1, keepdims=True, ddof=1)"),
            "layernorm_backward", "fix the forward first"),
    # ---- group norm, forward
    Mistake("gn_interleaved_groups", _gn("xg = x.reshape(N, G, -1)",
                                         "xg = x.reshape(N, C // G, G, H * W).transpose(0, 2, 1, 3).reshape(N, G, -1)").replace(
        "xhat = ((xg - mu) / np.sqrt(var + eps)).reshape(N, C, H, W)",
        "xhat = ((xg - mu) / np.sqrt(var + eps)).reshape(N, G, C // G, H * W).transpose(0, 2, 1, 3).reshape(N, C, H, W)"),
            "groupnorm_forward", "interleave the channels"),
    Mistake("gn_channels_last_reshape", _gn("xg = x.reshape(N, G, -1)", "xg = x.transpose(0, 2, 3, 1).reshape(N, G, -1)").replace(
        "xhat = ((xg - mu) / np.sqrt(var + eps)).reshape(N, C, H, W)",
        "xhat = ((xg - mu) / np.sqrt(var + eps)).reshape(N, H, W, C).transpose(0, 3, 1, 2)"),
            "groupnorm_forward", "mix channels and positions"),
    Mistake("gn_batch_statistics", _gn("mu = xg.mean(axis=2, keepdims=True)\n    var = xg.var(axis=2, keepdims=True)",
                                       "mu = xg.mean(axis=(0, 2), keepdims=True)\n    var = xg.var(axis=(0, 2), keepdims=True)"),
            "groupnorm_forward", "as batch norm"),
    Mistake("gn_gamma_per_group", _gn(
        "out = xhat * gamma.reshape(1, C, 1, 1) + beta.reshape(1, C, 1, 1)",
        "out = (xhat.reshape(N, G, -1) * gamma[:G, None] + beta[:G, None]).reshape(N, C, H, W)"),
            "groupnorm_forward", "per CHANNEL"),
    Mistake("gn_eps_outside_sqrt", _gn("np.sqrt(var + eps)).reshape", "(np.sqrt(var) + eps)).reshape"),
            "groupnorm_forward", "eps is outside the square root"),
    Mistake("gn_ignores_G", _gn("xg = x.reshape(N, G, -1)", "xg = x.reshape(N, 1, -1)"),
            "groupnorm_forward", "you ignore G"),
    Mistake("gn_G_not_dividing_accepted", _gn('    if C % G != 0:\n        raise ValueError("G must divide C")\n', ""),
            "groupnorm_groups", "G must divide C"),
    Mistake("gn_G_check_assert", _gn('raise ValueError("G must divide C")', 'assert False, "G must divide C"'),
            "groupnorm_groups", "raise ValueError"),
    # ---- group norm, backward
    Mistake("gn_bwd_no_dmean_path", _gn("dx = (g - g.mean(axis=2, keepdims=True) - xh", "dx = (g - xh"),
            "groupnorm_backward", "path through the mean is missing"),
    Mistake("gn_bwd_dgamma_batch_only", _gn("dgamma = (dout * xhat).sum(axis=(0, 2, 3))", "dgamma = (dout * xhat).sum(axis=0)"),
            "groupnorm_backward", "not summed over the right axes"),
    Mistake("gn_bwd_no_gamma", _gn("g = (dout * gamma.reshape(1, C, 1, 1)).reshape(N, G, -1)", "g = dout.reshape(N, G, -1)"),
            "groupnorm_backward", "missing the factor gamma"),
    # ---- the torch module
    Mistake("module_F_group_norm", _module(
        "        N, C, H, W = x.shape\n",
        "        return torch.nn.functional.group_norm(x, self.num_groups, self.weight, self.bias, self.eps)\n"),
            "gn_module_forward", "built-in normalization", flag="forbidden"),
    Mistake("module_wraps_nn_GroupNorm", '''
class GroupNorm(nn.Module):
    def __init__(self, num_groups, num_channels, eps=1e-5, affine=True):
        super().__init__()
        inner = nn.GroupNorm(num_groups, num_channels, eps=eps, affine=affine)
        self.weight, self.bias = inner.weight, inner.bias
        self.forward = inner.forward
''', "gn_module_forward", "built-in normalization", flag="forbidden"),
    Mistake("module_layer_norm_per_group", _module(
        "        xhat = ((xg - mean) / torch.sqrt(var + self.eps)).reshape(N, C, H, W)",
        "        xhat = getattr(torch, 'layer_norm')(xg, xg.shape[2:], eps=self.eps).reshape(N, C, H, W)"),
            "gn_module_grad", "built-in normalization", flag="forbidden"),
    Mistake("module_unbiased_var", _module("var = xg.var(dim=2, keepdim=True, correction=0)", "var = xg.var(dim=2, keepdim=True)"),
            "gn_module_forward", "UNBIASED variance"),
    Mistake("module_weight_per_group", _module(
        "self.weight = nn.Parameter(torch.ones(num_channels))\n            self.bias = nn.Parameter(torch.zeros(num_channels))",
        "self.weight = nn.Parameter(torch.ones(num_groups))\n            self.bias = nn.Parameter(torch.zeros(num_groups))"),
            "gn_module_forward", "per CHANNEL, not per group"),
    Mistake("module_affine_ignored", _module("        if affine:\n            self.weight", "        if True:\n            self.weight").replace(
        "        if self.affine:\n", "        if True:\n"),
            "gn_module_forward", "none with affine=False"),
    Mistake("module_eps_ignored", _module("torch.sqrt(var + self.eps)", "torch.sqrt(var + 1e-5)"),
            "gn_module_forward", "you ignore the eps argument"),
    Mistake("module_G_not_checked", _module(
        '        if num_channels % num_groups != 0:\n            raise ValueError("num_groups must divide num_channels")\n', ""),
            "gn_module_forward", "GroupNorm(4, 6) returned a module"),
    Mistake("module_detached_statistics", _module(
        "        mean = xg.mean(dim=2, keepdim=True)\n        var = xg.var(dim=2, keepdim=True, correction=0)",
        "        mean = xg.detach().mean(dim=2, keepdim=True)\n        var = xg.detach().var(dim=2, keepdim=True, correction=0)"),
            "gn_module_grad", "as constants"),
]
