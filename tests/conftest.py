from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import write_wjazzd

# The longest modules (mostly waiting on real processes and the broker's visibility timeout) run
# first, so `make test`'s workers (pytest-xdist, one module each, in this order) start on them
# together and finish together.
FIRST = ("tests/bot/test_celery.py", "tests/bot/test_celery_batch.py", "tests/bot/test_e2e_seeds.py",
         "tests/bot/test_e2e_load.py", "tests/bot/test_e2e_waits.py")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> tuple[int, int]:
        path = item.nodeid.split("::")[0]
        if path in FIRST:
            return 0, FIRST.index(path)
        return (1 if item.get_closest_marker("slow") else 2), 0

    items.sort(key=rank)  # stable: the order within each module is kept


@pytest.fixture(scope="session")
def fixture_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tokenised dataset of 8 hand-written solos (5 train, 3 validation recordings)."""
    from training.corpus import Source, read_sources
    from training.fit.dataset import build

    root = tmp_path_factory.mktemp("corpus")
    report = read_sources([Source.parse(f"wjazzd={write_wjazzd(root / 'wjazzd', solos=8)}")])
    ds, _ = build(report.sheets, ["fixture"], valid_fraction=0.5)
    path = root / "ds.json.gz"
    ds.save(path)
    return path


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory, fixture_dataset: Path) -> Path:
    """A tiny checkpoint trained by the tests themselves (never committed)."""
    from training.fit.train import preset, train

    out = tmp_path_factory.mktemp("ck") / "tiny"
    train(preset("tiny", style="jazz"), fixture_dataset, out, device="cpu", say=lambda _: None)
    return out


@pytest.fixture(scope="session")
def tiny_checkpoint_b(tmp_path_factory: pytest.TempPathFactory, fixture_dataset: Path) -> Path:
    """A second tiny checkpoint with other weights (another seed), for swaps."""
    from training.fit.train import preset, train

    out = tmp_path_factory.mktemp("ck") / "tiny-b"
    train(preset("tiny", style="jazz", seed=99), fixture_dataset, out, device="cpu", say=lambda _: None)
    return out


ERA_LABELS = [("Pat Metheny", "POSTBOP"), ("Charlie Parker", "BEBOP"), ("Lester Young", "SWING"), ("Chet Baker", "COOL")]


@pytest.fixture(scope="session")
def labelled_dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """8 hand-written solos labelled with performers and WJazzD styles (``ERA_LABELS``, cycled)."""
    from training.corpus import Source, read_sources
    from training.fit.dataset import build

    root = tmp_path_factory.mktemp("labelled")
    report = read_sources([Source.parse(f"wjazzd={write_wjazzd(root / 'wjazzd', solos=8, labels=ERA_LABELS)}")])
    ds, _ = build(report.sheets, ["fixture"], valid_fraction=0.5)
    path = root / "ds.json.gz"
    ds.save(path)
    return path


@pytest.fixture(scope="session")
def tiny_conditioned_checkpoint(tmp_path_factory: pytest.TempPathFactory, labelled_dataset: Path) -> Path:
    """A tiny jazz checkpoint with era and player inputs (every performer gets a player id)."""
    from training.fit.train import preset, train

    out = tmp_path_factory.mktemp("ck") / "tiny-cond"
    train(preset("tiny", style="jazz", condition=True, min_player_pieces=1), labelled_dataset, out, device="cpu",
          say=lambda _: None)
    return out
