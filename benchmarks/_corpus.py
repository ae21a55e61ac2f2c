"""A seeded, Zipf-like corpus shared by the benchmarks (same words for every run)."""

from __future__ import annotations

import random


def vocabulary(size: int, seed: int = 7) -> list[str]:
    """``size`` distinct pseudo-words of 3 to 10 letters."""
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"
    words: set[str] = set()
    while len(words) < size:
        words.add("".join(rng.choice(letters) for _ in range(rng.randint(3, 10))))
    return sorted(words)


def lines(num_lines: int, words_per_line: int = 10, vocab_size: int = 50_000,
          seed: int = 11) -> list[str]:
    """``num_lines`` lines of ``words_per_line`` words drawn with a Zipf-like skew."""
    rng = random.Random(seed)
    vocab = vocabulary(vocab_size)
    weights = [1.0 / (i + 1) for i in range(len(vocab))]
    picks = rng.choices(vocab, weights=weights, k=num_lines * words_per_line)
    return [" ".join(picks[i : i + words_per_line]) for i in range(0, len(picks), words_per_line)]
