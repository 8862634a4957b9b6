"""kdlib.sparse: the bucket and sampled caches estimate the teacher's own distribution; storage per kind."""
import pytest
import torch
import torch.nn.functional as F

from kdlib import distill, sparse


@pytest.fixture()
def logits():
    g = torch.Generator().manual_seed(0)
    return torch.randn(6, 5, 11, generator=g) * 2, torch.randn(6, 5, 11, generator=g), torch.randint(0, 11, (6, 5), generator=g)


def bucket_cache(teacher, k):
    top = teacher.topk(k, -1)
    return top.values, top.indices.to(torch.uint8), sparse.log_normaliser(teacher)


def test_a_bucket_of_the_whole_vocabulary_is_the_dense_forward_kl(logits):
    teacher, student, y = logits
    dense = distill.kd_terms(student, teacher, y, T=1.0, alpha=1.0)["soft"]
    assert sparse.bucket_kd_terms(student, *bucket_cache(teacher, 11), y)["soft"] == pytest.approx(float(dense), rel=1e-5)


def test_the_bucket_is_a_kl_over_k_plus_one_outcomes(logits):
    teacher, student, y = logits
    p, q = teacher.softmax(-1).reshape(-1, 11), student.softmax(-1).reshape(-1, 11)
    ids = teacher.reshape(-1, 11).topk(3, -1).indices
    pk, qk = p.gather(-1, ids), q.gather(-1, ids)
    P, Q = torch.cat([pk, 1 - pk.sum(-1, keepdim=True)], -1), torch.cat([qk, 1 - qk.sum(-1, keepdim=True)], -1)
    expected = (P * (P.log() - Q.log())).sum(-1).mean()
    got = sparse.bucket_kd_terms(student, *bucket_cache(teacher, 3), y)["soft"]
    assert float(got) == pytest.approx(float(expected), rel=1e-4)
    assert float(sparse.bucket_kd_terms(teacher, *bucket_cache(teacher, 3), y)["soft"]) == pytest.approx(0, abs=1e-5)


def test_renormalised_top_k_rewards_a_student_sharper_than_the_teacher_and_the_bucket_does_not(logits):
    teacher, student, y = logits
    values, ids, _ = bucket_cache(teacher, 3)
    sharper = teacher.scatter(-1, ids.long(), values + 5.0)  # the teacher's top 3 pushed up: its tail emptied
    renorm = lambda s: float(distill.topk_kd_terms(s, values, ids, y)["soft"])
    bucket = lambda s: float(sparse.bucket_kd_terms(s, *bucket_cache(teacher, 3), y)["soft"])
    assert renorm(sharper) < renorm(teacher)            # renormalised: the overconfident student wins
    assert bucket(teacher) < 1e-5 < 0.1 < bucket(sharper)  # bucket: only the teacher itself scores 0


def test_sampled_draws_are_an_unbiased_estimate_of_the_dense_cross_entropy(logits):
    teacher, student, y = logits
    dense_ce = -(teacher.softmax(-1) * F.log_softmax(student, -1)).sum(-1).mean()
    estimates = []
    for seed in range(300):
        ids = sparse.sample_ids(teacher, 4, seed=seed)
        c = sparse.sampled_kd_terms(student, ids, y)
        entropy_c = 0  # the estimate of the cross-entropy is the KL plus the histogram's own entropy
        hist = torch.zeros(30, 11).scatter_add_(-1, ids.reshape(-1, 4).long(), torch.full((30, 4), 0.25))
        entropy_c = float(-(torch.xlogy(hist, hist)).sum(-1).mean())
        estimates.append(float(c["soft"]) + entropy_c)
    mean = sum(estimates) / len(estimates)
    assert mean == pytest.approx(float(dense_ce), rel=0.02)


def test_sample_ids_are_seeded_in_range_and_small():
    logits = torch.randn(3, 7, 20)
    a, b = sparse.sample_ids(logits, 8, seed=1), sparse.sample_ids(logits, 8, seed=1, rows_per_chunk=5)
    assert a.shape == (3, 7, 8) and a.dtype == torch.uint8 and torch.equal(a, b)
    assert int(a.max()) < 20 and not torch.equal(a, sparse.sample_ids(logits, 8, seed=2))


def test_bytes_per_position():
    assert [sparse.bytes_per_position(kind, 8, 84) for kind in ("dense", "topk", "bucket", "sampled")] == [168, 24, 28, 8]
    assert sparse.bytes_per_position("topk", 84, 84) == 168  # all of them: the ids are implied
    with pytest.raises(ValueError, match="Unknown cache kind"):
        sparse.bytes_per_position("zip", 8, 84)


def test_signals_read_their_batches_and_refuse_what_they_cannot_do(logits):
    teacher, student, y = logits
    values, ids, log_z = bucket_cache(teacher, 4)
    X = torch.zeros(6, 5, dtype=torch.long)
    crit = distill.KDCriterion(1.0, 1.0, signal=sparse.BucketLogits())
    assert float(crit(student, (X, y, values, ids, log_z))) >= 0
    sampled = distill.KDCriterion(1.0, 0.5, signal=sparse.SampledLogits())
    draws = sparse.sample_ids(teacher, 4)
    assert float(sampled(student, (X, y, draws))) > 0
    with pytest.raises(ValueError, match="T = 1"):
        distill.KDCriterion(2.0, 1.0, signal=sparse.SampledLogits())(student, (X, y, draws))
    with pytest.raises(ValueError, match="forward"):
        distill.KDCriterion(1.0, 1.0, signal=sparse.BucketLogits(), direction="reverse")
    with pytest.raises(ValueError, match="BucketLogits"):
        distill.KDCriterion(1.0, 1.0, signal=distill.SparseLogits())(student, (X, y, values, ids, log_z))
    with pytest.raises(ValueError, match="SampledLogits"):
        distill.KDCriterion(1.0, 1.0)(student, (X, y, draws))
