"""The live webcam demo (``python -m fer_lib webcam``): every frame of a camera through the video pipeline,
shown in a window with each face's box, emotion and the frames per second."""

from __future__ import annotations

import os
import time

import cv2

from fer_lib.classifiers import EmotionClassifier
from fer_lib.errors import MediaError
from fer_lib.faces import FaceDetector, annotate
from fer_lib.video import FrameAnalyser, open_writer


def run_webcam(
    camera: int | str,
    detector: FaceDetector,
    classifier: EmotionClassifier,
    *,
    margin: float = 0.1,
    smoothing: float = 0.6,
    detect_every: int = 3,
    record: str | os.PathLike[str] | None = None,
    window: str = "fer-study (q or Esc quits)",
) -> dict[str, float | int | str | None]:
    """Show a live window with each face's box, emotion and the achieved FPS; q or Esc quits.

    Frames are written to disk only when ``record`` names a file (never overwritten).

    Args:
        camera: camera index (0 is the default camera), or a video file / stream URL in its place.
        detect_every: detect on every N-th frame, reusing boxes in between (see :class:`FrameAnalyser`).

    Returns:
        ``frames`` shown, ``achieved_fps`` and ``record`` (the file written, or None).

    Raises:
        MediaError: if the camera cannot be opened or read, or this OpenCV has no GUI (headless build).
    """
    log_level = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # our error replaces OpenCV's warnings
    try:
        capture = cv2.VideoCapture(camera)
        ok, frame = capture.read() if capture.isOpened() else (False, None)
    finally:
        cv2.utils.logging.setLogLevel(log_level)
    if not ok:
        capture.release()
        raise MediaError(
            f"camera {camera} could not be opened (no such camera, no permission, or in use "
            "by another program); try another --camera index"
        )
    try:
        cv2.namedWindow(window, cv2.WINDOW_AUTOSIZE)
    except cv2.error:
        capture.release()
        raise MediaError(
            f"camera {camera}: this OpenCV build has no GUI for the live window (opencv-python-headless); "
            "install opencv-python instead (pip uninstall opencv-python-headless; pip install "
            "opencv-python), or analyse a recorded clip with `python -m fer_lib video`"
        ) from None
    analyser = FrameAnalyser(detector, classifier, margin=margin, smoothing=smoothing, detect_every=detect_every)
    writer, record_path = None, None
    frames, fps, start, last = 0, 0.0, time.perf_counter(), time.perf_counter()
    try:
        while ok:
            shown = annotate(frame, analyser.analyse(frame))
            now = time.perf_counter()
            fps = 1.0 / max(now - last, 1e-6) if frames == 0 else 0.9 * fps + 0.1 / max(now - last, 1e-6)
            last = now
            cv2.putText(shown, f"{fps:.0f} FPS", (10, 30), cv2.FONT_HERSHEY_SIMPLEX, 0.9, (0, 255, 0), 2, cv2.LINE_AA)
            if record is not None:
                if writer is None:
                    writer, record_path = open_writer(
                        record, capture.get(cv2.CAP_PROP_FPS) or 30.0, (shown.shape[1], shown.shape[0])
                    )
                writer.write(shown)
            cv2.imshow(window, shown)
            frames += 1
            key = cv2.waitKey(1) & 0xFF
            if key in (ord("q"), 27) or cv2.getWindowProperty(window, cv2.WND_PROP_VISIBLE) < 1:
                break
            ok, frame = capture.read()
    finally:
        capture.release()
        if writer is not None:
            writer.release()
        cv2.destroyWindow(window)
    return {
        "frames": frames,
        "achieved_fps": frames / (time.perf_counter() - start),
        "record": None if record_path is None else str(record_path),
    }
