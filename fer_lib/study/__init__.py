"""The study's machinery: run folders and provenance, the report runner, reproduction, ablations, Ray
batches, the webcam and the command line. The method it runs (data, model, training, evaluation,
faces, video, plots) is the rest of :mod:`fer_lib`, which never imports from here."""
