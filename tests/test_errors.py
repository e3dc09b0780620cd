"""Errors cross process boundaries as themselves: a study's worker jobs raise them in another process."""

import importlib
import pickle
import pkgutil

import emofuse
from emofuse.errors import DataError, EmofuseError
from emofuse.labels import UnknownLabelError

# The errors whose constructor takes more than a message, with arguments for each.
_ARGS = {DataError: (("x.wav", "bad"), {}),
         UnknownLabelError: ((["joyful", "meh"],), {"source": "labels.csv", "accepted": ["happy", "sad"]})}


def test_a_data_error_survives_pickling_with_its_file_and_problem():
    error = pickle.loads(pickle.dumps(DataError("clips/a.wav", "not a RIFF file")))
    assert type(error) is DataError
    assert (error.path, error.problem, str(error)) == ("clips/a.wav", "not a RIFF file", "clips/a.wav: not a RIFF file")


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


def test_every_emofuse_error_survives_pickling():
    # Import every module, so that every error class is defined (serving needs its extra: skip what cannot import).
    for module in pkgutil.walk_packages(emofuse.__path__, "emofuse."):
        if module.name == "emofuse.__main__":  # runs the CLI
            continue
        try:
            importlib.import_module(module.name)
        except ImportError:
            continue
    classes = sorted(set(_subclasses(EmofuseError)), key=lambda c: c.__qualname__)
    assert len(classes) > 10
    for cls in classes:
        args, kwargs = next((v for base, v in _ARGS.items() if issubclass(cls, base)), (("what went wrong",), {}))
        error = cls(*args, **kwargs)
        again = pickle.loads(pickle.dumps(error))
        assert type(again) is cls and str(again) == str(error) and vars(again) == vars(error), cls
