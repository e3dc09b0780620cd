import numpy as np

from emofuse.study.paired import pair_by_emotion


def test_pairs_share_the_emotion_and_cover_the_faces():
    rng = np.random.default_rng(0)
    voice_y = np.repeat(np.arange(7), 30)
    face_y = np.tile(np.arange(6), 50)  # no face of class 6
    pick = pair_by_emotion(voice_y, face_y, rng)
    has_face = voice_y != 6
    assert (face_y[pick[has_face]] == voice_y[has_face]).all()
    assert (pick[~has_face] == -1).all()
    assert len(np.unique(pick[voice_y == 0])) > 10  # drawn at random, not one face reused
    again = pair_by_emotion(voice_y, face_y, np.random.default_rng(0))
    assert (again == pick).all()
