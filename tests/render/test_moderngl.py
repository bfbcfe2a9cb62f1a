"""Our rasterizer beside an independent one: OpenGL (Mesa llvmpipe through moderngl, headless EGL).

The same meshes and cameras are drawn by both; the silhouettes must agree (IoU > 0.99), and the visible
face ids almost everywhere. Skips, saying why, where moderngl or an OpenGL context is unavailable.
OpenGL runs in a child process: an EGL context and the CUDA-aware libraries torch may import later
(triton) do not always coexist in one process.
"""

import subprocess
import sys

import numpy as np
import pytest
import torch

from ganfactory.render import Camera, Mesh, icosphere, rasterize_mesh

pytest.importorskip("moderngl", reason="moderngl is not installed (pip install moderngl)")
trimesh = pytest.importorskip("trimesh", reason="trimesh is not installed")

GL_SCRIPT = r'''
import sys
import numpy as np
import moderngl

VERTEX = """
#version 330
uniform mat4 mvp;
in vec3 in_pos;
void main() { gl_Position = mvp * vec4(in_pos, 1.0); }
"""
FRAGMENT = """
#version 330
out vec4 color;
void main() {
    int id = gl_PrimitiveID + 1;
    color = vec4(float(id & 255), float((id >> 8) & 255), float((id >> 16) & 255), 255.0) / 255.0;
}
"""
data = np.load(sys.argv[1])
try:
    ctx = moderngl.create_context(standalone=True, backend="egl")
except Exception as exc:
    print(f"no headless OpenGL context (moderngl EGL backend): {exc}", file=sys.stderr)
    sys.exit(3)
H, W = (int(x) for x in data["size"])
prog = ctx.program(vertex_shader=VERTEX, fragment_shader=FRAGMENT)
vbo = ctx.buffer(data["verts"].astype("f4").tobytes())
ibo = ctx.buffer(data["faces"].astype("i4").tobytes())
vao = ctx.vertex_array(prog, [(vbo, "3f", "in_pos")], index_buffer=ibo)
color = ctx.renderbuffer((W, H), components=4)
depth = ctx.depth_renderbuffer((W, H))
fbo = ctx.framebuffer(color_attachments=[color], depth_attachment=depth)
fbo.use()
ctx.enable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
ctx.front_face = "ccw"
out = []
for mvp in data["mvps"]:
    prog["mvp"].write(mvp.astype("f4").T.copy().tobytes())  # column-major
    fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
    vao.render(moderngl.TRIANGLES)
    rgba = np.frombuffer(fbo.read(components=4), dtype=np.uint8).reshape(H, W, 4)[::-1].astype(np.int64)
    out.append(rgba[..., 0] + (rgba[..., 1] << 8) + (rgba[..., 2] << 16) - 1)
np.save(sys.argv[2], np.stack(out))
'''


def gl_projection(cam: Camera, near=0.1, far=100.0) -> np.ndarray:
    """Our intrinsics as an OpenGL projection (clip w = -z_view), so that NDC x, y agree exactly."""
    H, W = cam.image_size
    fx, fy = cam.focal[0].tolist()
    cx, cy = cam.principal[0].tolist()
    cx_ndc = (2 * cx + 1) / W - 1
    cy_ndc = 1 - (2 * cy + 1) / H
    return np.array([[2 * fx / W, 0, -cx_ndc, 0], [0, 2 * fy / H, -cy_ndc, 0],
                     [0, 0, -(far + near) / (far - near), -2 * far * near / (far - near)], [0, 0, -1, 0]])


def gl_face_ids(tmp_path, verts: np.ndarray, faces: np.ndarray, cams: list[Camera]) -> np.ndarray:
    """[N, H, W] visible face ids (-1 for none) drawn by OpenGL for each camera."""
    mvps = []
    for cam in cams:
        view = np.eye(4)
        view[:3, :3] = cam.R[0].double().numpy()
        view[:3, 3] = cam.t[0].double().numpy()
        mvps.append(gl_projection(cam) @ view)
    np.savez(tmp_path / "in.npz", verts=verts, faces=faces, mvps=np.stack(mvps),
             size=np.array(cams[0].image_size))
    run = subprocess.run([sys.executable, "-c", GL_SCRIPT, str(tmp_path / "in.npz"), str(tmp_path / "out.npy")],
                         capture_output=True, text=True, timeout=120)
    if run.returncode == 3:
        pytest.skip(run.stderr.strip())
    assert run.returncode == 0, run.stderr
    return np.load(tmp_path / "out.npy")


def real_meshes():
    torus = trimesh.creation.torus(major_radius=0.8, minor_radius=0.3, major_sections=48, minor_sections=24)
    v, f = icosphere(4)
    g = torch.Generator().manual_seed(0)
    noise = 0.05 * torch.rand(v.shape[0], 1, generator=g)
    bumps = 1 + 0.15 * torch.sin(5 * v[:, :1]) * torch.cos(4 * v[:, 1:2]) + noise
    return {"torus": (np.asarray(torus.vertices), np.asarray(torus.faces)),
            "bumpy_sphere": ((v * bumps).numpy().astype(np.float64), f.numpy())}


@pytest.mark.parametrize("name", ["torus", "bumpy_sphere"])
def test_silhouette_and_face_ids_match_opengl(tmp_path, name):
    verts, faces = real_meshes()[name]
    assert len(faces) > 2000
    size = (96, 128)
    cams = [Camera.orbit(torch.tensor([az], dtype=torch.float64), torch.tensor([el], dtype=torch.float64),
                         torch.tensor([3.0], dtype=torch.float64), 0.8, size)
            for az, el in [(0.3, 0.5), (2.0, -0.3), (4.0, 1.0)]]
    theirs_all = gl_face_ids(tmp_path, verts, faces, cams)
    mesh = Mesh(torch.from_numpy(verts)[None], torch.from_numpy(faces).long())
    ious, agree = [], []
    for cam, theirs in zip(cams, theirs_all, strict=True):
        ours = rasterize_mesh(mesh, cam, size).face_idx[0].numpy()
        a, b = ours >= 0, theirs >= 0
        ious.append((a & b).sum() / (a | b).sum())
        both = a & b
        agree.append((ours[both] == theirs[both]).mean())
    print(name, "IoU", [round(float(x), 5) for x in ious], "face ids", [round(float(x), 4) for x in agree])
    assert min(ious) > 0.99, ious
    assert min(agree) > 0.97, agree
