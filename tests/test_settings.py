"""The project's settings.ini is the lab-defaults file the library reads."""

from conftest import ROOT, run_cli
from restoration_nb.core import DEFAULT_SETTINGS, read_settings


def test_shipped_settings_match_builtin_defaults():
    s = read_settings(ROOT / "settings.ini")
    for key, value in DEFAULT_SETTINGS.items():
        if key in ("data_dir", "output_dir"):
            assert s[key] == str((ROOT / value).resolve()), key
        else:
            assert s[key] == value and type(s[key]) is type(value), key


def test_a_course_settings_file_changes_the_cli_defaults(tmp_path, faces_dir):
    "An instructor's settings.ini (via RESTORATION_NB_SETTINGS) sets the seed the CLI uses."
    ini = tmp_path / "course.ini"
    ini.write_text("[restoration_nb]\nseed = 41\n")
    r = run_cli(
        "degrade",
        faces_dir / "face0.png",
        "-o",
        tmp_path / "out",
        "--quiet",
        env={"RESTORATION_NB_SETTINGS": str(ini)},
    )
    assert r.returncode == 0, r.stderr
    assert "seed 41" in r.stdout
