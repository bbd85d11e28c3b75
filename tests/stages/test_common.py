from beyond_imagenet.base.record import ResultRecord
from beyond_imagenet.stages.common import SHOWN_METRICS, print_record


def test_print_record_shows_intervals_and_counts_the_rest(capsys):
    metrics = {f"robustness/imagenet_c/fog/{s}/top1": 10.0 + s for s in range(1, 11)}
    intervals = {"robustness/imagenet_c/fog/1/top1": {"low": 9.5, "high": 12.25}}
    print_record(ResultRecord("robustness", "deit3_sup", "imagenet_c", metrics, intervals=intervals))
    line = capsys.readouterr().out.strip()
    assert "imagenet_c/fog/1/top1=11 [9.5, 12.25]" in line
    assert "imagenet_c/fog/2/top1=12," in line  # no interval recorded: the value alone
    assert line.endswith(f"(+{10 - SHOWN_METRICS} more)")
    assert "fog/10/top1" not in line


def test_print_record_drops_the_dataset_prefix_of_accuracy(capsys):
    print_record(ResultRecord("accuracy", "deit3_sup", "imagenet_v2", {"accuracy/imagenet_v2/top1": 71.5}))
    line = capsys.readouterr().out
    assert "top1=71.5" in line and "more" not in line and "accuracy/imagenet_v2/top1" not in line
