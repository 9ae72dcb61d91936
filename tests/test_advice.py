"""Advice costs no points but must be right: the vectorized solution gets none, a student-style
loop over the features (forward and backward, as bench/batchnorm.py's loop version) gets the
vectorization warning. A timing comparison, so with a wide margin: that loop is 24.7x PyTorch in
bench/results/batchnorm.md, the solution at most 1.8x, the threshold SPEED_K = 8x. (A loop in the
backward alone measured only 10-14x here: too close to the threshold for a test.)"""
from conftest import solution_namespace

from autograde.core import LocalStudent, run_advice
from autograde.notebook import exec_cells
from autograde.paths import load_tests

LOOP = '''
def batchnorm_forward(x, gamma, beta, bn_param):
    eps, momentum = bn_param.get("eps", 1e-5), bn_param.get("momentum", 0.1)
    n, d = x.shape
    out, xhat, inv_std = np.empty_like(x), np.empty_like(x), np.empty(d)
    mean, var = np.empty(d), np.empty(d)
    for j in range(d):  # one feature at a time
        col = x[:, j]
        mean[j] = col.mean()
        var[j] = ((col - mean[j]) ** 2).mean()
        inv_std[j] = 1.0 / np.sqrt(var[j] + eps)
        xhat[:, j] = (col - mean[j]) * inv_std[j]
        out[:, j] = gamma[j] * xhat[:, j] + beta[j]
    rm, rv = bn_param.get("running_mean", np.zeros(d)), bn_param.get("running_var", np.ones(d))
    bn_param["running_mean"] = (1 - momentum) * rm + momentum * mean
    bn_param["running_var"] = (1 - momentum) * rv + momentum * var * n / (n - 1)
    return out, (x - mean, var, eps, inv_std, xhat, gamma)


def batchnorm_backward_fast(dout, cache):
    xc, var, eps, inv_std, xhat, gamma = cache
    n, d = dout.shape
    dx, dgamma, dbeta = np.empty_like(dout), np.empty(d), np.empty(d)
    for j in range(d):  # one feature at a time
        dy = dout[:, j]
        dbeta[j], dgamma[j] = dy.sum(), (dy * xhat[:, j]).sum()
        dx[:, j] = gamma[j] * inv_std[j] / n * (n * dy - dbeta[j] - xhat[:, j] * dgamma[j])
    return dx, dgamma, dbeta
'''


def _advice(ns):
    (adv,) = [a for a in load_tests("batch_norm").advice if a.id == "vectorized"]
    return run_advice(adv, LocalStudent(ns), seed=0)


def test_vectorized_solution_gets_no_advice():
    assert _advice(solution_namespace("batch_norm")) is None


def test_loop_over_features_gets_the_vectorization_warning():
    ns, errors = exec_cells([(0, LOOP)], solution_namespace("batch_norm"))
    assert not errors, errors
    msg = _advice(ns)
    assert msg is not None and "x PyTorch's F.batch_norm" in msg and "axis=0" in msg, msg


def test_advice_waits_for_passing_tests():
    (adv,) = load_tests("batch_norm").advice
    assert set(adv.after) <= set(load_tests("batch_norm"))


def test_feedback_shows_advice():
    from autograde.grading.feedback import feedback_html

    from autograde.grading.records import NotebookResult, Result

    nb = NotebookResult("batch_norm.ipynb", "batch_norm.ipynb", 1, reference_device="cpu",
                        advice=({"id": "vectorized", "message": "took 69.3 ms, 30x PyTorch's"},))
    r = Result(format=1, student_id="s1", assignment="batch_norm", key="", seed_base=0, hidden=True, score=0,
               max_score=0, manual_max_score=0, flags=(), notebooks=(nb,))
    html = feedback_html(r, nb)
    assert "<h2>Advice</h2>" in html and "30x PyTorch&#x27;s" in html
    assert "PyTorch on <code>cpu</code>" in html  # which device ran the references
