"""Active learning in the annotator: the background interpreter (trained on the annotations so far) pre-fills new
samples, offers the seeds its ensemble is least sure about, and retrains when the annotated count changes."""

import base64
import time

import httpx
import numpy as np

from ganfactory.annotate.active import ActiveConfig
from ganfactory.annotate.server import ServerConfig, create_app
from ganfactory.annotate.store import open_project
from ganfactory.annotate.synthetic import cluster_centroids, colour_clusters
from ganfactory.annotate.training import training_images
from ganfactory.gan.latent import Latent, seed_item_id, synthesize_latents
from ganfactory.gan.sampling import to_uint8
from ganfactory.label import train_interpreter


def _wait(c, predicate, seconds=40):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = c.get("/api/active").json()
        if predicate(state):
            return state
        time.sleep(0.2)
    raise AssertionError(f"active learner did not get there: {state}")


def test_prefill_and_uncertain_suggestions(G, tmp_path, serve, schema):
    store = open_project(tmp_path / "project", schema, "tiny32")
    seeds = [0, 1, 2]
    images = to_uint8(synthesize_latents(G, [Latent.from_seed(G, s) for s in seeds + [3]]))
    centres = colour_clusters(images[:3], 3)
    truth = cluster_centroids(images, centres)               # classes 1..3: a learnable function of the image
    config = ActiveConfig(num_models=3, pixels_per_image=1024, max_epochs=15, pool=10, suggestions=4)
    with serve(create_app(store, G, ServerConfig(active=config))) as url, httpx.Client(base_url=url) as c:
        assert c.get("/api/active").json()["state"] == "waiting"
        for s in seeds[:2]:
            c.post("/api/items/new", json={"seed": s})
            lab = base64.b64encode(truth[s].tobytes()).decode()
            assert c.put(f"/api/items/{seed_item_id(s)}/annotation", json={"label": lab}).is_success
        state = _wait(c, lambda a: a["state"] == "ready" and a["trained_on"] == 2)
        sugg = state["suggestions"]
        assert len(sugg) == 4 and len({x["seed"] for x in sugg}) == 4
        assert not {x["seed"] for x in sugg} & {0, 1}
        assert [x["uncertainty"] for x in sugg] == sorted((x["uncertainty"] for x in sugg), reverse=True)
        assert all(x["uncertainty"] > 0 for x in sugg)
        # a new sample comes pre-filled with the interpreter's labels, close to the truth, not yet annotated
        new = c.post("/api/items/new", json={"seed": 3}).json()
        assert new["prefilled"]
        got = c.get("/api/items/seed000003/annotation").json()
        assert got["status"] == "pending" and got["prefilled"]
        pre = np.frombuffer(base64.b64decode(got["label"]), np.uint8).reshape(32, 32)
        assert store.annotated_ids() == ["seed000000", "seed000001"]
        # exactly the labels of an interpreter trained (same settings, same seed) on the two annotated items
        interp, _ = train_interpreter(G, training_images(store, G), schema, config.interpreter_config(), progress=False)
        _, pred = interp.predict(G, [Latent.from_seed(G, 3)])
        assert np.array_equal(pre, pred.labels[0])
        assert got["keypoints"] is None or len(got["keypoints"]) == 2
        assert set(np.unique(pre)) <= {1, 2, 3} and len(np.unique(pre)) > 1   # the classes it was taught
        # the offer is the pool's (the 10 seeds after the largest used one) four highest ensemble scores
        _, pool = interp.predict(G, [Latent.from_seed(G, x) for x in range(2, 12)])
        ranked = sorted(range(2, 12), key=lambda x: -float(pool.score[x - 2]))[:4]
        assert [x["seed"] for x in sugg] == ranked
        # equal up to float32 rounding: the server scores the pool in other batches, and on some CPUs (AVX-512)
        # the sums then run in another order
        np.testing.assert_allclose([x["uncertainty"] for x in sugg], [float(pool.score[x - 2]) for x in ranked],
                                   rtol=1e-6)
        # choosing a suggested seed removes it from the offer
        chosen = sugg[0]["seed"]
        c.post("/api/items/new", json={"seed": chosen})
        assert chosen not in [x["seed"] for x in c.get("/api/active").json()["suggestions"]]
        # correcting and saving it changes the annotated count: the learner retrains
        c.put("/api/items/seed000003/annotation", json={"label": base64.b64encode(truth[3].tobytes()).decode()})
        _wait(c, lambda a: a["state"] == "ready" and a["trained_on"] == 3)
