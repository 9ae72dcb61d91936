"""Mistake catalog for `batch_norm`: the classic errors of a first batch-norm implementation."""
from . import Mistake

# A correct training-mode forward pass, reused (with one line changed) by several entries.
_FORWARD = '''
def batchnorm_forward(x, gamma, beta, bn_param):
    mode = bn_param["mode"]
    eps = bn_param.get("eps", 1e-5)
    momentum = bn_param.get("momentum", 0.1)
    N, D = x.shape
    running_mean = bn_param.get("running_mean", np.zeros(D))
    running_var = bn_param.get("running_var", np.ones(D))
    if mode == "train":
        mu = x.mean(axis=0)
        var = x.var(axis=0)
        std = np.sqrt(var + eps)
        xhat = (x - mu) / std
        out = gamma * xhat + beta
        bn_param["running_mean"] = (1 - momentum) * running_mean + momentum * mu
        bn_param["running_var"] = (1 - momentum) * running_var + momentum * x.var(axis=0, ddof=1)
        cache = (x - mu, var, eps, 1 / std, xhat, gamma)  # the solution's layout
    else:
        out = gamma * (x - running_mean) / np.sqrt(running_var + eps) + beta
        cache = None
    return out, cache
'''


def _forward(old: str, new: str) -> str:
    assert old in _FORWARD, old
    return _FORWARD.replace(old, new)


# A correct staged backward (CS231n style) for that forward's cache.
_BACKWARD = '''
def batchnorm_backward(dout, cache):
    xc, var, eps, inv_std, xhat, gamma = cache
    N = xc.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dxhat = dout * gamma
    dvar = np.sum(dxhat * xc, axis=0) * -0.5 * (var + eps) ** -1.5
    dmu = np.sum(-dxhat * inv_std, axis=0) + dvar * np.mean(-2 * xc, axis=0)
    dx = dxhat * inv_std + dvar * 2 * xc / N + dmu / N
    return dx, dgamma, dbeta
'''


def _backward(old: str, new: str) -> str:
    assert old in _BACKWARD, old
    return _FORWARD + _BACKWARD.replace(old, new)


_INIT = '''class BatchNorm1d(nn.Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))
'''


def student_module(correction: int) -> str:
    """A student's ``BatchNorm1d`` (running buffers updated in place) that normalizes with the batch
    variance of the given ``correction``: 0 is right, 1 the unbiased-variance mistake. Typed into
    notebooks by the student-path tests."""
    return _INIT + f'''
    def forward(self, x):
        if self.training:
            mean = x.mean(dim=0)
            var = x.var(dim=0, correction={correction})
            with torch.no_grad():
                self.running_mean.mul_(1 - self.momentum).add_(self.momentum * mean)
                self.running_var.mul_(1 - self.momentum).add_(self.momentum * x.var(dim=0, correction=1))
        else:
            mean, var = self.running_mean, self.running_var
        return (x - mean) / torch.sqrt(var + self.eps) * self.weight + self.bias
'''


# A correct module, for the module entries.
_MODULE = "\n" + _INIT + '''
    def forward(self, x):
        if self.training:
            mean = x.mean(0)
            var = ((x - mean) ** 2).mean(0)
            with torch.no_grad():
                n = x.shape[0]
                self.running_mean = (1 - self.momentum) * self.running_mean + self.momentum * mean
                self.running_var = (1 - self.momentum) * self.running_var + self.momentum * var * n / (n - 1)
        else:
            mean, var = self.running_mean, self.running_var
        return self.weight * (x - mean) / torch.sqrt(var + self.eps) + self.bias
'''


def _module(old: str, new: str) -> str:
    assert old in _MODULE, old
    return _MODULE.replace(old, new)


MISTAKES = [
    # ---- forward, train mode
    Mistake("fwd_eps_outside_sqrt", _forward("std = np.sqrt(var + eps)", "std = np.sqrt(var) + eps"),
            "batchnorm_forward_train", "eps is outside the square root"),
    Mistake("fwd_unbiased_normalize", _forward("var = x.var(axis=0)", "var = x.var(axis=0, ddof=1)"),
            "batchnorm_forward_train", "UNBIASED variance"),
    Mistake("fwd_running_var_biased",
            _forward("momentum * x.var(axis=0, ddof=1)", "momentum * var"),
            "batchnorm_forward_train", "must hold the UNBIASED batch variance"),
    Mistake("fwd_momentum_cs231n", _forward(
        '''momentum = bn_param.get("momentum", 0.1)''', '''momentum = bn_param.get("momentum", 0.9)''').replace(
        "(1 - momentum) * running_mean + momentum * mu", "momentum * running_mean + (1 - momentum) * mu").replace(
        "(1 - momentum) * running_var + momentum *", "momentum * running_var + (1 - momentum) *"),
            "batchnorm_forward_train", "momentum is the wrong way round"),
    Mistake("fwd_var_shortcut", _forward("var = x.var(axis=0)", "var = np.mean(x ** 2, axis=0) - mu ** 2"),
            "batchnorm_forward_train", "catastrophic cancellation"),
    Mistake("fwd_eps_param_ignored", _forward('eps = bn_param.get("eps", 1e-5)', 'eps = 1e-5'),
            "batchnorm_forward_train", "you ignore bn_param['eps']"),
    Mistake("fwd_running_var_std",
            _forward("momentum * x.var(axis=0, ddof=1)", "momentum * np.sqrt(x.var(axis=0, ddof=1))"),
            "batchnorm_forward_train", "updated with the standard deviation"),
    Mistake("fwd_var_sum_of_squares", _forward("var = x.var(axis=0)", "var = ((x - mu) ** 2).sum(axis=0)"),
            "batchnorm_forward_train", "sum of squares, not a mean"),
    Mistake("fwd_inplace", _forward("xhat = (x - mu) / std", "x -= mu\n        xhat = x / std"),
            "batchnorm_forward_train", "in place"),
    Mistake("fwd_running_not_stored", _forward(
        '''bn_param["running_mean"] = (1 - momentum)''', '''running_mean = (1 - momentum)''').replace(
        '''bn_param["running_var"] = (1 - momentum)''', '''running_var = (1 - momentum)'''),
            "batchnorm_forward_train", "no 'running_mean'"),
    Mistake("fwd_uses_torch", _forward("var = x.var(axis=0)", "var = __import__('torch').from_numpy(x).var(0, correction=0).numpy()"),
            "batchnorm_forward_train", "deep-learning framework", flag="forbidden"),
    # ---- forward, eval mode
    Mistake("eval_batch_statistics", _forward('if mode == "train":', 'if True:'),
            "batchnorm_forward_eval", "BATCH statistics"),
    Mistake("eval_updates_running", _forward(
        "        cache = None\n",
        "        cache = None\n        bn_param['running_mean'] = (1 - momentum) * running_mean + momentum * x.mean(axis=0)\n"),
            "batchnorm_forward_eval", "changed bn_param['running_mean'] in eval mode"),
    # ---- backward
    Mistake("bwd_no_dvar_path", _backward("dx = dxhat * inv_std + dvar * 2 * xc / N + dmu / N",
                                          "dx = dxhat * inv_std + dmu / N"),
            "batchnorm_backward", "path through the variance is missing"),
    Mistake("bwd_no_dmean_path", _backward("dx = dxhat * inv_std + dvar * 2 * xc / N + dmu / N",
                                           "dx = dxhat * inv_std + dvar * 2 * xc / N"),
            "batchnorm_backward", "path through the mean is missing"),
    Mistake("bwd_var_derivative_n_minus_1", _backward("dvar * 2 * xc / N", "dvar * 2 * xc / (N - 1)"),
            "batchnorm_backward", "1/(N - 1)"),
    Mistake("bwd_dbeta_mean", _backward("dbeta = dout.sum(axis=0)", "dbeta = dout.mean(axis=0)"),
            "batchnorm_backward", "dbeta averages dout over the batch"),
    Mistake("bwd_correct_but_forward_unbiased", _forward("var = x.var(axis=0)", "var = x.var(axis=0, ddof=1)") + _BACKWARD,
            "batchnorm_backward", "fix the forward first"),
    Mistake("bwdfast_correct_but_forward_eps_outside", _forward("std = np.sqrt(var + eps)", "std = np.sqrt(var) + eps"),
            "batchnorm_backward_fast", "batchnorm_forward is wrong on this input"),
    Mistake("bwd_forward_returns_no_cache", _forward("cache = (x - mu, var, eps, 1 / std, xhat, gamma)", "cache = None"),
            "batchnorm_backward", "cache = None"),
    Mistake("bwdfast_dgamma_wrong_axis", '''
def batchnorm_backward_fast(dout, cache):
    _, _, _, inv_std, xhat, gamma = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=1)
    dx = gamma * inv_std / N * (N * dout - dbeta - xhat * (dout * xhat).sum(axis=0))
    return dx, dgamma, dbeta
''', "batchnorm_backward_fast", "not summed over the right axes"),
    Mistake("bwdfast_no_gamma", '''
def batchnorm_backward_fast(dout, cache):
    _, _, _, inv_std, xhat, gamma = cache
    N = dout.shape[0]
    dbeta = dout.sum(axis=0)
    dgamma = (dout * xhat).sum(axis=0)
    dx = inv_std / N * (N * dout - dbeta - xhat * dgamma)
    return dx, dgamma, dbeta
''', "batchnorm_backward_fast", "missing the factor gamma"),
    # ---- spatial
    Mistake("spatial_batch_axis_only", '''
def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    N, C, H, W = x.shape
    flat = x.reshape(N, -1)
    out, cache = batchnorm_forward(flat, np.repeat(gamma, H * W), np.repeat(beta, H * W),
                                   {**bn_param, "running_mean": np.zeros(C * H * W), "running_var": np.ones(C * H * W)})
    return out.reshape(N, C, H, W), cache
''', "spatial_batchnorm_forward", "batch axis only"),
    Mistake("spatial_axes_0_1", '''
def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    eps = bn_param.get("eps", 1e-5)
    mu = x.mean(axis=(0, 1), keepdims=True)
    var = x.var(axis=(0, 1), keepdims=True)
    out = gamma[None, :, None, None] * (x - mu) / np.sqrt(var + eps) + beta[None, :, None, None]
    return out, (x, mu, var, gamma, eps)
''', "spatial_batchnorm_forward", "axes (0, 1)"),
    Mistake("spatial_reshape_without_transpose", '''
def spatial_batchnorm_forward(x, gamma, beta, bn_param):
    N, C, H, W = x.shape
    out, cache = batchnorm_forward(x.reshape(-1, C), gamma, beta, bn_param)
    return out.reshape(N, C, H, W), (cache, x.shape)
''', "spatial_batchnorm_forward", "without moving the channel axis last"),
    Mistake("spatial_bwd_no_transpose_back", '''
def spatial_batchnorm_backward(dout, cache):
    cache2d, (N, C, H, W) = cache
    dx, dgamma, dbeta = batchnorm_backward_fast(dout.transpose(0, 2, 3, 1).reshape(-1, C), cache2d)
    return dx.reshape(N, C, H, W), dgamma, dbeta
''', "spatial_batchnorm_backward", "transpose it back"),
    # ---- the torch module
    Mistake("module_F_batch_norm", '''
class BatchNorm1d(nn.Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.eps, self.momentum = eps, momentum
        self.weight = nn.Parameter(torch.ones(num_features))
        self.bias = nn.Parameter(torch.zeros(num_features))
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))

    def forward(self, x):
        return torch.nn.functional.batch_norm(x, self.running_mean, self.running_var, self.weight, self.bias,
                                              self.training, self.momentum, self.eps)
''', "bn_module_train", "built-in normalization", flag="forbidden"),
    Mistake("module_getattr_batch_norm", _module(
        "        return self.weight * (x - mean) / torch.sqrt(var + self.eps) + self.bias",
        '''        f = getattr(torch, "batch" + "_norm")
        return f(x, self.weight, self.bias, self.running_mean, self.running_var, self.training, self.momentum,
                 self.eps, False)'''), "bn_module_grad", "built-in normalization", flag="forbidden"),
    Mistake("module_wraps_nn_batchnorm", '''
class BatchNorm1d(nn.Module):
    def __init__(self, num_features, eps=1e-5, momentum=0.1):
        super().__init__()
        self.inner = nn.BatchNorm1d(num_features, eps=eps, momentum=momentum)
        self.weight, self.bias = self.inner.weight, self.inner.bias
        self.register_buffer("running_mean", self.inner.running_mean)
        self.register_buffer("running_var", self.inner.running_var)

    def forward(self, x):
        return self.inner(x)
''', "bn_module_eval", "built-in normalization", flag="forbidden"),
    Mistake("module_running_var_biased", _module("self.momentum * var * n / (n - 1)", "self.momentum * var"),
            "bn_module_train", "must hold the UNBIASED batch variance"),
    Mistake("module_momentum_flipped", _module(
        "(1 - self.momentum) * self.running_mean + self.momentum * mean",
        "self.momentum * self.running_mean + (1 - self.momentum) * mean"),
            "bn_module_train", "momentum is the wrong way round"),
    Mistake("module_plain_attributes", _module(
        '''        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_var", torch.ones(num_features))''',
        '''        self.running_mean = torch.zeros(num_features)
        self.running_var = torch.ones(num_features)'''), "bn_module_train", "register_buffer"),
    Mistake("module_eval_batch_statistics", _module("if self.training:", "if True:"),
            "bn_module_eval", "BATCH statistics"),
    Mistake("module_detached_statistics", _module(
        "            mean = x.mean(0)\n            var = ((x - mean) ** 2).mean(0)",
        "            mean = x.detach().mean(0)\n            var = ((x.detach() - mean) ** 2).mean(0)"),
            "bn_module_grad", "as constants"),
    Mistake("module_running_in_graph", _module(
        "            with torch.no_grad():\n                n = x.shape[0]",
        "            if True:\n                n = x.shape[0]"),
            "bn_module_grad", "autograd history"),
]
