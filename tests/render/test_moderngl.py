"""Our rasterizer beside an independent one: OpenGL (Mesa llvmpipe through moderngl, headless EGL).

The same meshes and cameras are drawn by both; the silhouettes must agree (IoU > 0.99), and the visible
face ids almost everywhere. Skips, saying why, where no OpenGL context can be created.
"""

import numpy as np
import pytest
import torch

from ganfactory.render import Camera, Mesh, icosphere, rasterize_mesh

moderngl = pytest.importorskip("moderngl", reason="moderngl is not installed (pip install moderngl)")
trimesh = pytest.importorskip("trimesh", reason="trimesh is not installed")

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


@pytest.fixture(scope="module")
def gl():
    try:
        ctx = moderngl.create_context(standalone=True, backend="egl")
    except Exception as exc:  # no EGL / no Mesa: nothing to compare against
        pytest.skip(f"no headless OpenGL context (moderngl EGL backend): {exc}")
    yield ctx
    ctx.release()


def gl_projection(cam: Camera, near=0.1, far=100.0) -> np.ndarray:
    """Our intrinsics as an OpenGL projection (clip w = -z_view), so that NDC x, y agree exactly."""
    H, W = cam.image_size
    fx, fy = cam.focal[0].tolist()
    cx, cy = cam.principal[0].tolist()
    cx_ndc = (2 * cx + 1) / W - 1
    cy_ndc = 1 - (2 * cy + 1) / H
    return np.array([[2 * fx / W, 0, -cx_ndc, 0], [0, 2 * fy / H, -cy_ndc, 0],
                     [0, 0, -(far + near) / (far - near), -2 * far * near / (far - near)], [0, 0, -1, 0]])


def gl_face_ids(ctx, verts: np.ndarray, faces: np.ndarray, cam: Camera) -> np.ndarray:
    H, W = cam.image_size
    view = np.eye(4)
    view[:3, :3] = cam.R[0].double().numpy()
    view[:3, 3] = cam.t[0].double().numpy()
    mvp = (gl_projection(cam) @ view).astype("f4")
    prog = ctx.program(vertex_shader=VERTEX, fragment_shader=FRAGMENT)
    prog["mvp"].write(mvp.T.copy().tobytes())  # column-major
    vbo = ctx.buffer(verts.astype("f4").tobytes())
    ibo = ctx.buffer(faces.astype("i4").tobytes())
    vao = ctx.vertex_array(prog, [(vbo, "3f", "in_pos")], index_buffer=ibo)
    fbo = ctx.simple_framebuffer((W, H), components=4)
    depth = ctx.depth_renderbuffer((W, H))
    fbo = ctx.framebuffer(color_attachments=[fbo.color_attachments[0]], depth_attachment=depth)
    fbo.use()
    ctx.enable(moderngl.DEPTH_TEST | moderngl.CULL_FACE)
    ctx.front_face = "ccw"
    fbo.clear(0.0, 0.0, 0.0, 0.0, depth=1.0)
    vao.render(moderngl.TRIANGLES)
    rgba = np.frombuffer(fbo.read(components=4), dtype=np.uint8).reshape(H, W, 4)[::-1].astype(np.int64)
    for obj in (vao, vbo, ibo, fbo, depth, prog):
        obj.release()
    return rgba[..., 0] + (rgba[..., 1] << 8) + (rgba[..., 2] << 16) - 1


def real_meshes():
    torus = trimesh.creation.torus(major_radius=0.8, minor_radius=0.3, major_sections=48, minor_sections=24)
    v, f = icosphere(4)
    g = torch.Generator().manual_seed(0)
    bumps = 1 + 0.15 * torch.sin(5 * v[:, :1]) * torch.cos(4 * v[:, 1:2]) + 0.05 * torch.rand(v.shape[0], 1,
                                                                                               generator=g)
    return {"torus": (np.asarray(torus.vertices), np.asarray(torus.faces)),
            "bumpy_sphere": ((v * bumps).numpy().astype(np.float64), f.numpy())}


@pytest.mark.parametrize("name", ["torus", "bumpy_sphere"])
def test_silhouette_and_face_ids_match_opengl(gl, name):
    verts, faces = real_meshes()[name]
    assert len(faces) > 2000
    size = (96, 128)
    ious, agree = [], []
    for az, el in [(0.3, 0.5), (2.0, -0.3), (4.0, 1.0)]:
        cam = Camera.orbit(torch.tensor([az], dtype=torch.float64), torch.tensor([el], dtype=torch.float64),
                           torch.tensor([3.0], dtype=torch.float64), 0.8, size)
        mesh = Mesh(torch.from_numpy(verts)[None], torch.from_numpy(faces).long())
        ours = rasterize_mesh(mesh, cam, size).face_idx[0].numpy()
        theirs = gl_face_ids(gl, verts, faces, cam)
        a, b = ours >= 0, theirs >= 0
        ious.append((a & b).sum() / (a | b).sum())
        both = a & b
        agree.append((ours[both] == theirs[both]).mean())
    print(name, "IoU", [round(float(x), 5) for x in ious], "face ids", [round(float(x), 4) for x in agree])
    assert min(ious) > 0.99, ious
    assert min(agree) > 0.97, agree
