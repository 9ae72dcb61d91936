"""Mistake catalog for `optimizers`: the solution's classes with one piece changed."""
from . import Mistake

# The solution's classes, as a student would write them; each entry changes one piece.
_RMSPROP = '''
class RMSprop:
    """torch.optim.RMSprop for a list of numpy arrays, updated in place by step(grads)."""

    def __init__(self, params, lr=0.01, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False):
        """params: list of float arrays (any shapes, 0-d included), kept and updated in place."""
        for what, value in (("learning rate", lr), ("eps", eps), ("momentum", momentum),
                            ("weight_decay", weight_decay), ("alpha", alpha)):
            if not 0.0 <= value:
                raise ValueError(f"Invalid {what}: {value}")
        self.params = params
        self.lr, self.alpha, self.eps = lr, alpha, eps
        self.weight_decay, self.momentum, self.centered = weight_decay, momentum, centered
        self.square_avg = [np.zeros_like(p) for p in params]  # s: running mean of g², per parameter
        self.grad_avg = [np.zeros_like(p) for p in params]  # ḡ: running mean of g (centered)
        self.buffer = [np.zeros_like(p) for p in params]  # b: momentum buffer

    def step(self, grads):
        """grads: list of arrays, one per parameter and of its shape. Updates self.params in place."""
        a = self.alpha
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if self.weight_decay:
                g = g + self.weight_decay * p  # a new array: the caller's gradient stays as it is
            self.square_avg[i] = a * self.square_avg[i] + (1 - a) * g * g
            s = self.square_avg[i]
            if self.centered:
                self.grad_avg[i] = a * self.grad_avg[i] + (1 - a) * g
                s = s - self.grad_avg[i] ** 2
            avg = np.sqrt(s) + self.eps
            if self.momentum > 0:
                self.buffer[i] = self.momentum * self.buffer[i] + g / avg
                p -= self.lr * self.buffer[i]
            else:
                p -= self.lr * g / avg
'''

_ADAM = '''
class Adam:
    """torch.optim.Adam for a list of numpy arrays, updated in place by step(grads)."""

    decoupled = False  # AdamW sets True: weight decay shrinks θ instead of adding λθ to g

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        """params: list of float arrays (any shapes, 0-d included), kept and updated in place."""
        if not 0.0 <= lr:
            raise ValueError(f"Invalid learning rate: {lr}")
        if not 0.0 <= eps:
            raise ValueError(f"Invalid epsilon value: {eps}")
        for k in (0, 1):
            if not 0.0 <= betas[k] < 1.0:
                raise ValueError(f"Invalid beta parameter at index {k}: {betas[k]}")
        if not 0.0 <= weight_decay:
            raise ValueError(f"Invalid weight_decay value: {weight_decay}")
        self.params = params
        self.lr, self.betas, self.eps = lr, betas, eps
        self.weight_decay, self.amsgrad = weight_decay, amsgrad
        self.m = [np.zeros_like(p) for p in params]
        self.v = [np.zeros_like(p) for p in params]
        self.v_max = [np.zeros_like(p) for p in params]
        self.t = 0  # step() calls so far: the same count for every parameter

    def step(self, grads):
        """grads: list of arrays, one per parameter and of its shape. Updates self.params in place."""
        b1, b2 = self.betas
        self.t += 1  # before use: the first step has t = 1
        correction1, correction2 = 1 - b1 ** self.t, 1 - b2 ** self.t
        for i, (p, g) in enumerate(zip(self.params, grads)):
            if self.decoupled:
                p *= 1 - self.lr * self.weight_decay
            elif self.weight_decay:
                g = g + self.weight_decay * p
            self.m[i] = b1 * self.m[i] + (1 - b1) * g
            self.v[i] = b2 * self.v[i] + (1 - b2) * g * g
            v = self.v[i]
            if self.amsgrad:
                self.v_max[i] = np.maximum(self.v_max[i], v)  # of the raw v, kept between steps
                v = self.v_max[i]
            denom = np.sqrt(v) / np.sqrt(correction2) + self.eps
            p -= self.lr / correction1 * self.m[i] / denom


class AdamW(Adam):
    """torch.optim.AdamW: Adam with decoupled weight decay."""

    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01, amsgrad=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)
        self.decoupled = True
'''

_STEP = '''
class StepLR:
    """torch.optim.lr_scheduler.StepLR: multiplies optimizer.lr by gamma every step_size steps."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        self.optimizer, self.step_size, self.gamma = optimizer, step_size, gamma
        self.base_lr = optimizer.lr
        self.t = 0  # step() calls so far

    def step(self):
        self.t += 1
        self.optimizer.lr = self.base_lr * self.gamma ** (self.t // self.step_size)

    def get_last_lr(self):
        """A list with the learning rate set last (one per parameter group, as PyTorch's: here one)."""
        return [self.optimizer.lr]
'''

_COSINE = '''
class CosineAnnealingLR:
    """torch.optim.lr_scheduler.CosineAnnealingLR: lr follows a cosine from base to eta_min in T_max steps."""

    def __init__(self, optimizer, T_max, eta_min=0.0):
        self.optimizer, self.T_max, self.eta_min = optimizer, T_max, eta_min
        self.base_lr = optimizer.lr
        self.t = 0

    def step(self):
        self.t += 1
        cos = math.cos(math.pi * self.t / self.T_max)
        self.optimizer.lr = self.eta_min + (self.base_lr - self.eta_min) * (1 + cos) / 2

    def get_last_lr(self):
        """A list with the learning rate set last (one per parameter group, as PyTorch's: here one)."""
        return [self.optimizer.lr]
'''

def _edit(text: str, *pairs: str) -> str:
    for old, new in zip(pairs[::2], pairs[1::2]):
        assert old in text, old
        text = text.replace(old, new)
    return text


def rmsprop(*pairs):
    return _edit(_RMSPROP, *pairs)


def adam(*pairs):
    return _edit(_ADAM, *pairs)


def step_lr(*pairs):
    return _edit(_STEP, *pairs)


def cosine(*pairs):
    return _edit(_COSINE, *pairs)


MISTAKES = [
    # --- RMSprop ---------------------------------------------------------------------------
    Mistake("rmsprop_eps_in_root", rmsprop("avg = np.sqrt(s) + self.eps", "avg = np.sqrt(s + self.eps)"),
            "rmsprop", "eps is inside the square root"),
    Mistake("rmsprop_alpha_swapped", rmsprop("a * self.square_avg[i] + (1 - a) * g * g",
                                             "(1 - a) * self.square_avg[i] + a * g * g"),
            "rmsprop", "alpha weights the OLD value"),
    Mistake("rmsprop_bias_corrected", rmsprop("        a = self.alpha\n",
                                              "        a = self.alpha\n        self.t = getattr(self, 't', 0) + 1\n",
                                              "s = self.square_avg[i]\n", "s = self.square_avg[i] / (1 - a ** self.t)\n"),
            "rmsprop", "RMSprop has no bias correction"),
    Mistake("rmsprop_decay_in_place", rmsprop("g = g + self.weight_decay * p", "g += self.weight_decay * p"),
            "rmsprop", "changed the gradient arrays it was given"),
    Mistake("rmsprop_not_in_place", rmsprop("p -= self.lr * g / avg", "p = p - self.lr * g / avg"),
            "rmsprop", "rebinds the array instead of changing it in place"),
    Mistake("rmsprop_centered_without_mean_squared", rmsprop("                s = s - self.grad_avg[i] ** 2\n", ""),
            "rmsprop_centered_momentum", "subtracts the squared running mean"),
    Mistake("rmsprop_momentum_before_division",
            rmsprop("self.buffer[i] = self.momentum * self.buffer[i] + g / avg",
                    "self.buffer[i] = self.momentum * self.buffer[i] + g",
                    "p -= self.lr * self.buffer[i]", "p -= self.lr * self.buffer[i] / avg"),
            "rmsprop_centered_momentum", "accumulates the already divided step"),
    # --- Adam ------------------------------------------------------------------------------
    Mistake("adam_no_bias_correction", adam("correction1, correction2 = 1 - b1 ** self.t, 1 - b2 ** self.t",
                                            "correction1, correction2 = 1.0, 1.0"),
            "adam", "no bias correction"),
    Mistake("adam_step_count_plus_one", adam("self.t = 0  #", "self.t = 1  #"),
            "adam", "wrong step count"),
    Mistake("adam_step_count_from_zero",
            adam("        self.t += 1  # before use: the first step has t = 1\n", "",
                 "            p -= self.lr / correction1 * self.m[i] / denom\n",
                 "            p -= self.lr / correction1 * self.m[i] / denom\n        self.t += 1\n"),
            "adam", "counts steps from 0"),
    Mistake("adam_step_count_per_parameter",
            adam("        self.t += 1  # before use: the first step has t = 1\n"
                 "        correction1, correction2 = 1 - b1 ** self.t, 1 - b2 ** self.t\n", "",
                 "        for i, (p, g) in enumerate(zip(self.params, grads)):\n",
                 "        for i, (p, g) in enumerate(zip(self.params, grads)):\n            self.t += 1\n"
                 "            correction1, correction2 = 1 - b1 ** self.t, 1 - b2 ** self.t\n"),
            "adam", "shared across parameters"),
    Mistake("adam_eps_in_root", adam("denom = np.sqrt(v) / np.sqrt(correction2) + self.eps",
                                     "denom = np.sqrt(v / correction2 + self.eps)"),
            "adam", "eps is inside the square root"),
    Mistake("adam_uncorrected_second_moment", adam("denom = np.sqrt(v) / np.sqrt(correction2) + self.eps",
                                                   "denom = np.sqrt(v) + self.eps"),
            "adam", "second moment is not bias-corrected"),
    Mistake("adam_lr_read_in_init", adam("self.lr, self.betas, self.eps = lr, betas, eps",
                                         "self.lr, self.betas, self.eps = lr, betas, eps\n        self.step_size = lr",
                                         "p -= self.lr / correction1", "p -= self.step_size / correction1"),
            "adam", "read once, in __init__"),
    Mistake("adam_decoupled_decay", adam("            if self.decoupled:\n", "            if self.weight_decay:\n"),
            "adam_weight_decay", "AdamW's decoupled weight decay"),
    Mistake("adam_no_argument_checks", adam('''        for k in (0, 1):
            if not 0.0 <= betas[k] < 1.0:
                raise ValueError(f"Invalid beta parameter at index {k}: {betas[k]}")
''', ""), "optimizer_arguments", "must raise ValueError"),
    # --- AdamW -----------------------------------------------------------------------------
    Mistake("adamw_decay_on_gradient", adam("        self.decoupled = True\n", ""),
            "adamw", "You add λθ to the gradient"),
    Mistake("adamw_decay_lr_twice", adam("p *= 1 - self.lr * self.weight_decay",
                                         "p *= 1 - self.lr * self.lr * self.weight_decay"),
            "adamw", "multiplied by lr twice"),
    Mistake("adamw_decay_without_lr", adam("p *= 1 - self.lr * self.weight_decay", "p *= 1 - self.weight_decay"),
            "adamw", "not multiplied by the learning rate"),
    Mistake("adamw_decay_after_step",
            adam("            if self.decoupled:\n                p *= 1 - self.lr * self.weight_decay\n            elif",
                 "            if not self.decoupled and", "            p -= self.lr / correction1 * self.m[i] / denom\n",
                 "            p -= self.lr / correction1 * self.m[i] / denom\n"
                 "            if self.decoupled:\n                p *= 1 - self.lr * self.weight_decay\n"),
            "adamw", "BEFORE the Adam step"),
    # --- AMSGrad ---------------------------------------------------------------------------
    Mistake("amsgrad_max_of_corrected",
            adam("self.v_max[i] = np.maximum(self.v_max[i], v)", "self.v_max[i] = np.maximum(self.v_max[i], v / correction2)",
                 "denom = np.sqrt(v) / np.sqrt(correction2) + self.eps",
                 "denom = (np.sqrt(v) if self.amsgrad else np.sqrt(v) / np.sqrt(correction2)) + self.eps"),
            "amsgrad", "maximum of the bias-corrected"),
    Mistake("amsgrad_max_not_kept", adam("self.v_max[i] = np.maximum(self.v_max[i], v)  # of the raw v, kept between steps\n"
                                         "                v = self.v_max[i]",
                                         "v = np.maximum(self.v_max[i], v)"),
            "amsgrad", "amsgrad has no effect"),
    Mistake("adam_uses_torch", '''
import torch
class Adam:
    def __init__(self, params, lr=0.001, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False):
        self.params = params
        self.tensors = [torch.from_numpy(p) for p in params]  # share memory with the arrays
        self.opt = torch.optim.Adam(self.tensors, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay,
                                    amsgrad=amsgrad)

    @property
    def lr(self):
        return self.opt.param_groups[0]["lr"]

    @lr.setter
    def lr(self, value):
        self.opt.param_groups[0]["lr"] = value

    def step(self, grads):
        for t, g in zip(self.tensors, grads):
            t.grad = torch.from_numpy(np.array(g))
        self.opt.step()
''', "adam", "numpy exercise", flag="forbidden"),
    # --- StepLR ----------------------------------------------------------------------------
    Mistake("step_lr_one_step_early", step_lr("self.t // self.step_size", "(self.t + 1) // self.step_size"),
            "step_lr", "decays one step early"),
    Mistake("step_lr_one_step_late", step_lr("        self.t += 1\n        self.optimizer.lr = self.base_lr * self.gamma ** (self.t // self.step_size)\n",
                                             "        self.optimizer.lr = self.base_lr * self.gamma ** (self.t // self.step_size)\n        self.t += 1\n"),
            "step_lr", "decays one step late"),
    Mistake("step_lr_every_step", step_lr("self.t // self.step_size", "self.t / self.step_size"),
            "step_lr", "decays a little at every call"),
    Mistake("step_lr_float_not_list", step_lr("return [self.optimizer.lr]", "return self.optimizer.lr"),
            "step_lr", "returns a list"),
    Mistake("step_lr_optimizer_untouched", step_lr("self.base_lr = optimizer.lr", "self.base_lr = self.lr = optimizer.lr",
                                                   "self.optimizer.lr = self.base_lr", "self.lr = self.base_lr",
                                                   "return [self.optimizer.lr]", "return [self.lr]"),
            "step_lr", "optimizer.lr never changes"),
    # --- CosineAnnealingLR -----------------------------------------------------------------
    Mistake("cosine_one_step_behind",
            cosine("        self.t += 1\n        cos = math.cos(math.pi * self.t / self.T_max)\n",
                   "        cos = math.cos(math.pi * self.t / self.T_max)\n        self.t += 1\n"),
            "cosine_lr", "one step behind"),
    Mistake("cosine_stops_at_t_max", cosine("math.pi * self.t / self.T_max", "math.pi * min(self.t, self.T_max) / self.T_max"),
            "cosine_lr", "stays at η_min"),
    Mistake("cosine_restarts", cosine("math.pi * self.t / self.T_max", "math.pi * (self.t % self.T_max) / self.T_max"),
            "cosine_lr", "CosineAnnealingWarmRestarts"),
    Mistake("cosine_eta_min_ignored", cosine("self.eta_min + (self.base_lr - self.eta_min) * (1 + cos) / 2",
                                             "self.base_lr * (1 + cos) / 2"),
            "cosine_lr", "eta_min is ignored"),
]
