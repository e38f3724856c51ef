"""Run inside Blender (not collected by pytest): import mesh files as a user would and render each.

    blender -b --factory-startup --python tests/export/blender_render.py -- OUT_DIR FMT:PATH [FMT:PATH ...]

FMT is glb, obj or ply. For each file: a clean scene, Blender's own importer (glTF, OBJ, PLY),
and for PLY a material wired to the imported colour attribute (Blender's PLY importer makes the
attribute but no material; this is the step the README tells users to do). Then a small Cycles
render on the CPU, lit by a uniform white world with a transparent film, from Blender's front
view (camera on -Y looking at +Y, +Z up) framed on the object's bounding box. Writes
OUT_DIR/<i>.png (RGBA) and OUT_DIR/report.json with what each import produced (objects,
materials, image textures feeding Base Color, colour attributes); the caller measures the hues.
"""

import json
import sys
from pathlib import Path

import numpy

numpy.bool = bool  # Blender 3.4's glTF importer still uses np.bool, removed in NumPy 1.24

import bpy  # noqa: E402
from mathutils import Vector  # noqa: E402


def clean_scene() -> None:
    bpy.ops.wm.read_factory_settings(use_empty=True)


def import_file(fmt: str, path: str) -> None:
    if fmt == "glb":
        bpy.ops.import_scene.gltf(filepath=path)
    elif fmt == "obj":
        if hasattr(bpy.ops.wm, "obj_import"):
            bpy.ops.wm.obj_import(filepath=path)  # Blender >= 3.2 (forward -Z, up +Y by default)
        else:
            bpy.ops.import_scene.obj(filepath=path)
    elif fmt == "ply":
        bpy.ops.import_mesh.ply(filepath=path)
    else:
        raise SystemExit(f"unknown format {fmt}")


def color_attribute_names(mesh) -> list:
    if hasattr(mesh, "color_attributes"):
        return [a.name for a in mesh.color_attributes]
    return [a.name for a in mesh.vertex_colors]


def wire_color_attribute(obj) -> None:
    """What a user does after importing a PLY: a material whose Base Color is the colour attribute."""
    names = color_attribute_names(obj.data)
    if not names:
        return
    mat = bpy.data.materials.new("ply_vertex_colour")
    mat.use_nodes = True
    nodes, links = mat.node_tree.nodes, mat.node_tree.links
    bsdf = nodes["Principled BSDF"]
    attr = nodes.new("ShaderNodeVertexColor")
    attr.layer_name = names[0]
    links.new(attr.outputs["Color"], bsdf.inputs["Base Color"])
    bsdf.inputs["Metallic"].default_value = 0.0
    bsdf.inputs["Roughness"].default_value = 0.9
    obj.data.materials.clear()
    obj.data.materials.append(mat)


def describe(objs) -> dict:
    mats, textures = [], []
    for obj in objs:
        for mat in obj.data.materials:
            if mat is None:
                continue
            mats.append(mat.name)
            if not mat.use_nodes:
                continue
            for node in mat.node_tree.nodes:
                if node.type != "BSDF_PRINCIPLED":
                    continue
                for link in node.inputs["Base Color"].links:
                    src = link.from_node
                    if src.type == "TEX_IMAGE" and src.image is not None:
                        textures.append({"image": src.image.name, "size": list(src.image.size)})
    return {
        "objects": len(objs),
        "faces": sum(len(o.data.polygons) for o in objs),
        "materials": mats,
        "base_color_textures": textures,
        "color_attributes": sorted({n for o in objs for n in color_attribute_names(o.data)}),
    }


def frame_and_render(objs, png: Path, size: int, samples: int) -> None:
    scene = bpy.context.scene
    corners = [o.matrix_world @ Vector(c) for o in objs for c in o.bound_box]
    lo = Vector([min(c[i] for c in corners) for i in range(3)])
    hi = Vector([max(c[i] for c in corners) for i in range(3)])
    centre, radius = (lo + hi) / 2, (hi - lo).length / 2
    cam_data = bpy.data.cameras.new("cam")
    cam_data.lens_unit = "FOV"
    cam_data.angle = 0.6
    cam = bpy.data.objects.new("cam", cam_data)
    scene.collection.objects.link(cam)
    distance = 1.15 * radius / numpy.sin(cam_data.angle / 2)
    cam.location = centre + Vector((0.0, -distance, 0.0))  # Blender's front view: from -Y towards +Y
    cam.rotation_euler = (centre - cam.location).to_track_quat("-Z", "Y").to_euler()
    scene.camera = cam
    world = bpy.data.worlds.new("white")
    world.use_nodes = True
    world.node_tree.nodes["Background"].inputs["Color"].default_value = (1.0, 1.0, 1.0, 1.0)
    world.node_tree.nodes["Background"].inputs["Strength"].default_value = 1.0
    scene.world = world
    scene.render.engine = "CYCLES"
    scene.cycles.device = "CPU"
    scene.cycles.samples = samples
    scene.cycles.use_denoising = False
    scene.render.film_transparent = True
    scene.render.resolution_x = scene.render.resolution_y = size
    scene.render.resolution_percentage = 100
    scene.view_settings.view_transform = "Standard"  # no Filmic desaturation: sRGB out
    scene.render.image_settings.file_format = "PNG"
    scene.render.image_settings.color_mode = "RGBA"
    scene.render.filepath = str(png)
    bpy.ops.render.render(write_still=True)


def main() -> None:
    argv = sys.argv[sys.argv.index("--") + 1 :]
    out = Path(argv[0])
    out.mkdir(parents=True, exist_ok=True)
    size, samples = 48, 16
    report = []
    for i, item in enumerate(argv[1:]):
        fmt, path = item.split(":", 1)
        clean_scene()
        bpy.context.preferences.view.show_splash = False
        import_file(fmt, path)
        objs = [o for o in bpy.context.scene.objects if o.type == "MESH"]
        if fmt == "ply":
            for obj in objs:
                wire_color_attribute(obj)
        entry = {"format": fmt, "path": path, **describe(objs), "png": None}
        if objs:
            png = out / f"{i}.png"
            frame_and_render(objs, png, size, samples)
            entry["png"] = str(png)
        report.append(entry)
    (out / "report.json").write_text(json.dumps(report, indent=2))


main()
