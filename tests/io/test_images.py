"""Image loading: golden parity with the original loader, geometry transforms, EXIF, modes, errors."""

from __future__ import annotations

import json
import pathlib

import numpy as np
import pytest
import torch
from PIL import Image
from torch.testing import assert_close

from vggt3d.io.images import ImageLoadError, ImageTransform, load_images, preprocess_images

GOLDEN = pathlib.Path(__file__).parents[1] / "fixtures" / "golden"
GOLDEN_FILES = sorted(p.name for p in (GOLDEN / "images").iterdir())
CASES = [(mode, name) for mode in ("crop", "pad") for name in [*GOLDEN_FILES, "all"]]


def golden_paths(name: str) -> list[pathlib.Path]:
    return [GOLDEN / "images" / f for f in (GOLDEN_FILES if name == "all" else [name])]


@pytest.fixture(scope="module")
def golden():
    return dict(np.load(GOLDEN / "preprocess.npz"))


@pytest.fixture(scope="module")
def processed():
    return {case: preprocess_images(golden_paths(case[1]), mode=case[0]) for case in CASES}


@pytest.mark.parametrize("case", CASES, ids=[f"{m}/{n}" for m, n in CASES])
def test_golden_parity(golden, processed, case):
    images = processed[case].images
    expected = golden[f"{case[0]}/{case[1]}"]
    assert images.dtype == torch.float32 and tuple(images.shape) == expected.shape
    np.testing.assert_allclose(images.numpy(), expected, atol=1e-6, rtol=0)


def test_load_images_returns_the_batch(processed):
    images = load_images([str(p) for p in golden_paths("all")], mode="pad")
    assert torch.equal(images, processed[("pad", "all")].images)
    single = load_images(GOLDEN / "images" / "c_500x333.jpg")  # one path, not a list
    assert single.shape == (1, 3, 350, 518)


@pytest.mark.parametrize("case", CASES, ids=[f"{m}/{n}" for m, n in CASES])
def test_transforms_round_trip_and_match_the_golden_layout(processed, case):
    result = processed[case]
    assert len(result.transforms) == len(result.images)
    gen = torch.Generator().manual_seed(0)
    for pixels, transform in zip(result.images, result.transforms, strict=True):
        assert (transform.model_height, transform.model_width) == tuple(pixels.shape[1:])
        uv = torch.rand(10, 2, generator=gen, dtype=torch.float64) * 500
        assert_close(transform.original_to_model_points(transform.model_to_original_points(uv)), uv)
        np.testing.assert_allclose(
            transform.model_to_original_points(transform.original_to_model_points(uv.numpy())), uv.numpy()
        )
        # Everything outside the image content is white padding.
        x0, y0, x1, y1 = transform.content_box_xyxy
        outside = torch.ones_like(pixels[0], dtype=torch.bool)
        outside[y0:y1, x0:x1] = False
        assert (pixels[:, outside] == 1.0).all()
        # The original image centre lands on the centre of the resized image in model pixels.
        width, height = transform.original_width, transform.original_height
        intrinsics = torch.tensor(
            [[500.0, 0, (width - 1) / 2], [0, 500.0, (height - 1) / 2], [0, 0, 1]], dtype=torch.float64
        )
        model_k = transform.intrinsics_to_model(intrinsics)
        expected_c = [
            transform.offset_x + (transform.resized_width - 1) / 2,
            transform.offset_y + (transform.resized_height - 1) / 2,
        ]
        assert_close(model_k[[0, 1], [2, 2]], torch.tensor(expected_c, dtype=torch.float64))
        assert_close(
            model_k[[0, 1], [0, 1]],
            torch.tensor([500 * transform.scale_x, 500 * transform.scale_y], dtype=torch.float64),
        )
        assert_close(transform.intrinsics_to_original(model_k), intrinsics)


def test_golden_transform_numbers(processed):
    crop_b = processed[("crop", "b_480x640.png")].transforms[0]
    assert (crop_b.resized_width, crop_b.resized_height, crop_b.offset_x, crop_b.offset_y) == (518, 686, 0, -84)
    all_crop = processed[("crop", "all")].transforms
    assert [t.offset_y for t in all_crop] == [63, -84, 84, 0, 210]  # batch padding to 518 rows
    pad_b = processed[("pad", "b_480x640.png")].transforms[0]
    assert (pad_b.resized_width, pad_b.offset_x, pad_b.offset_y) == (392, 63, 0)
    assert_close(
        pad_b.original_to_model_points(torch.tensor([[-0.5, -0.5], [479.5, 639.5]])),
        torch.tensor([[62.5, -0.5], [454.5, 517.5]]),
    )


def test_projection_agrees_with_point_mapping(processed):
    transform = processed[("crop", "all")].transforms[1]  # b: resized and cropped
    intrinsics = torch.tensor([[400.0, 0, 250.0], [0, 420.0, 310.0], [0, 0, 1]], dtype=torch.float64)
    points = torch.randn(20, 3, dtype=torch.float64) + torch.tensor([0, 0, 4.0], dtype=torch.float64)

    def project(k):
        homogeneous = points @ k.T
        return homogeneous[:, :2] / homogeneous[:, 2:]

    assert_close(
        project(transform.intrinsics_to_model(intrinsics)), transform.original_to_model_points(project(intrinsics))
    )


def test_blob_centroid_lands_where_the_transform_says(tmp_path):
    """Image content moves as the transform predicts: a dark blob's centroid, after resize and batch padding."""
    v, u = np.mgrid[0:120, 0:200].astype(np.float64)
    centre = (70.3, 40.7)
    blob = 255 * (1 - np.exp(-((u - centre[0]) ** 2 + (v - centre[1]) ** 2) / (2 * 6.0**2)))
    Image.fromarray(np.round(blob).astype(np.uint8)).save(tmp_path / "blob.png")
    Image.new("RGB", (100, 200), (0, 128, 0)).save(tmp_path / "tall.png")
    result = preprocess_images([tmp_path / "blob.png", tmp_path / "tall.png"], mode="crop", size=140)
    transform = result.transforms[0]
    assert result.images.shape == (2, 3, 140, 140) and transform.offset_y == 28
    weight = (1 - result.images[0, 0]).double()
    vm, um = torch.meshgrid(torch.arange(140.0), torch.arange(140.0), indexing="ij")
    centroid = torch.stack([(weight * um.double()).sum(), (weight * vm.double()).sum()]) / weight.sum()
    expected = transform.original_to_model_points(torch.tensor(centre, dtype=torch.float64))
    assert_close(centroid, expected, atol=0.05, rtol=0)


def test_transform_dict_round_trip(processed):
    transform = processed[("pad", "all")].transforms[4]
    data = json.loads(json.dumps(transform.to_dict()))
    assert data["scale_x"] == transform.scale_x
    assert ImageTransform.from_dict(data) == transform


def write_oriented_jpeg(path: pathlib.Path) -> None:
    """A 60x40 (w x h) raw JPEG, left half red, right half blue, tagged 'rotate 90 CW to display'."""
    raw = Image.new("RGB", (60, 40), (0, 0, 255))
    raw.paste((255, 0, 0), (0, 0, 30, 40))
    exif = Image.Exif()
    exif[0x0112] = 6
    raw.save(path, exif=exif.tobytes(), quality=95)


def test_exif_orientation_is_applied(tmp_path):
    write_oriented_jpeg(tmp_path / "rotated.jpg")
    result = preprocess_images([tmp_path / "rotated.jpg"], size=28)
    image, transform = result.images[0], result.transforms[0]
    assert (transform.original_width, transform.original_height) == (40, 60)  # upright: portrait
    assert image.shape == (3, 28, 28)  # 28 x 42 resized, rows cropped to 28
    assert image[0, 2].mean() > 0.8 and image[2, 2].mean() < 0.2  # top is red
    assert image[2, -3].mean() > 0.8 and image[0, -3].mean() < 0.2  # bottom is blue


def test_exif_orientation_can_be_ignored(tmp_path):
    write_oriented_jpeg(tmp_path / "rotated.jpg")
    image = load_images([tmp_path / "rotated.jpg"], size=28, exif_transpose=False)[0]
    assert image.shape == (3, 14, 28)  # raw landscape
    assert image[0, :, 2].mean() > 0.8 and image[2, :, -3].mean() > 0.8  # left red, right blue


def test_grayscale_and_one_bit(tmp_path):
    Image.new("L", (30, 20), 100).save(tmp_path / "gray.png")
    Image.new("1", (30, 20), 1).save(tmp_path / "bits.png")
    images = load_images([tmp_path / "gray.png", tmp_path / "bits.png"], size=28)
    assert images.shape == (2, 3, 14, 28)
    assert torch.equal(images[0], torch.full((3, 14, 28), np.float32(100) / np.float32(255)))
    assert torch.equal(images[1], torch.ones(3, 14, 28))


def test_sixteen_bit_uses_the_full_range(tmp_path):
    Image.fromarray(np.full((20, 30), 30000, dtype=np.uint16)).save(tmp_path / "flat16.png")
    ramp = np.tile(np.linspace(0, 65535, 56).round().astype(np.uint16), (28, 1))
    Image.fromarray(ramp).save(tmp_path / "ramp16.png")
    assert Image.open(tmp_path / "flat16.png").mode == "I;16"
    flat = load_images([tmp_path / "flat16.png"], size=28)
    assert_close(flat, torch.full((1, 3, 14, 28), 30000 / 65535))
    image = load_images([tmp_path / "ramp16.png"], size=28)[0]
    assert image.min() >= 0 and image.max() <= 1
    row = image[0, 7]
    assert (row[1:] >= row[:-1] - 1e-6).all() and row[0] < 0.05 and row[-1] > 0.95  # monotone, not clipped
    assert torch.equal(image[0], image[1]) and torch.equal(image[1], image[2])
    Image.fromarray(np.full((20, 30), 30000, dtype=np.int32)).save(tmp_path / "flat32.tif")  # mode "I"
    assert_close(load_images([tmp_path / "flat32.tif"], size=28), flat)


def test_cmyk(tmp_path):
    Image.new("CMYK", (30, 20), (0, 255, 255, 0)).save(tmp_path / "red.tif")
    image = load_images([tmp_path / "red.tif"], size=28)[0]
    assert torch.equal(image, torch.tensor([1.0, 0.0, 0.0])[:, None, None].expand(3, 14, 28))


def test_palette_with_and_without_transparency(tmp_path):
    palette = Image.new("P", (30, 20), 0)
    palette.putpalette([255, 0, 0, 0, 0, 255] + [0] * 762)
    palette.paste(1, (0, 0, 15, 20))  # left half index 1 (blue)
    palette.save(tmp_path / "opaque.png")
    palette.save(tmp_path / "keyed.png", transparency=1)  # index 1 transparent
    palette.convert("RGB").save(tmp_path / "rgb.png")
    opaque, keyed, rgb = load_images([tmp_path / "opaque.png", tmp_path / "keyed.png", tmp_path / "rgb.png"], size=28)
    assert torch.equal(opaque, rgb)
    assert torch.equal(keyed[:, :, :5], torch.ones(3, 14, 5))  # transparent -> white
    assert torch.equal(keyed[:, :, -5:], rgb[:, :, -5:])


@pytest.mark.parametrize("mode", ["RGBA", "LA"])
def test_alpha_is_composited_onto_white(tmp_path, mode):
    colour = (10, 20, 30, 0) if mode == "RGBA" else (10, 0)
    image = Image.new(mode, (28, 28), colour)
    image.paste((10, 20, 30, 255) if mode == "RGBA" else (10, 255), (0, 0, 14, 28))
    image.save(tmp_path / "alpha.png")
    loaded = load_images([tmp_path / "alpha.png"], size=28)[0]
    assert torch.equal(loaded[:, :, 20:], torch.ones(3, 28, 8))
    expected = [10 / 255, 20 / 255, 30 / 255] if mode == "RGBA" else [10 / 255] * 3
    assert_close(loaded[:, :, :8], torch.tensor(expected)[:, None, None].expand(3, 28, 8))


def test_extreme_aspect_ratio_keeps_a_patch(tmp_path):
    Image.new("RGB", (2000, 10), (0, 0, 0)).save(tmp_path / "strip.png")
    result = preprocess_images([tmp_path / "strip.png"], mode="pad", size=56)
    assert result.images.shape == (1, 3, 56, 56) and result.transforms[0].resized_height == 14


def test_errors(tmp_path):
    with pytest.raises(ValueError, match="paths"):
        load_images([])
    missing = tmp_path / "nope.png"
    with pytest.raises(FileNotFoundError, match="nope.png") as info:
        load_images([missing])
    assert info.value.filename == str(missing)
    (tmp_path / "notes.jpg").write_text("not an image")
    with pytest.raises(ImageLoadError, match="notes.jpg") as bad:
        load_images([tmp_path / "notes.jpg"])
    assert isinstance(bad.value, ValueError) and "convert" in str(bad.value)
    Image.new("RGB", (64, 64), (1, 2, 3)).save(tmp_path / "full.png")
    (tmp_path / "truncated.png").write_bytes((tmp_path / "full.png").read_bytes()[:60])
    with pytest.raises(ImageLoadError, match="truncated.png"):
        load_images([tmp_path / "truncated.png"])
    with pytest.raises(ImageLoadError, match="directory"):
        load_images([tmp_path])
    for size in (0, -14, 500, 14.0, True):
        with pytest.raises(ValueError, match="multiple of 14"):
            load_images([tmp_path / "full.png"], size=size)
    with pytest.raises(ValueError, match="'crop', 'pad'"):
        load_images([tmp_path / "full.png"], mode="resize")


def test_transform_argument_errors(processed):
    transform = processed[("crop", "all")].transforms[0]
    with pytest.raises(ValueError, match="uv"):
        transform.original_to_model_points(torch.zeros(4, 3))
    with pytest.raises(ValueError, match="intrinsics"):
        transform.intrinsics_to_model(torch.eye(4))


# ------------------------------------------------------------- VGGT-Omega modes
OMEGA_CASES = [(mode, res, name) for mode in ("balanced", "max_size") for res in (512, 256)
               for name in [*GOLDEN_FILES, "all"]]


@pytest.fixture(scope="module")
def omega_golden():
    return dict(np.load(GOLDEN / "omega" / "preprocess_omega.npz"))


@pytest.mark.parametrize("case", OMEGA_CASES, ids=[f"{m}/{r}/{n}" for m, r, n in OMEGA_CASES])
def test_omega_golden_parity(omega_golden, case):
    mode, res, name = case
    images = preprocess_images(golden_paths(name), mode=mode, size=res, patch_size=16).images
    expected = omega_golden[f"{mode}/{res}/{name}"]
    assert tuple(images.shape) == expected.shape
    np.testing.assert_allclose(images.numpy(), expected, atol=1e-6, rtol=0)


def test_balanced_size_example_and_patch_checks():
    from vggt3d.io.images import _omega_size

    assert _omega_size(624, 416, "balanced", 512, 16) == (624, 416)  # README: 3:2 landscape at 512 -> 416 x 624
    assert _omega_size(1500, 1000, "balanced", 512, 16) == (624, 416)
    with pytest.raises(ValueError, match="multiple of 16"):
        preprocess_images(golden_paths("a_640x480.png"), mode="balanced", size=518, patch_size=16)


def test_aspect_crop_is_undone_by_the_transform(tmp_path):
    """A 1024x200 image loses its sides (aspect < 1:2); a blob's centroid lands where the transform says."""
    v, u = np.mgrid[0:100, 0:400].astype(np.float64)
    centre = (180.3, 40.7)
    blob = 255 * (1 - np.exp(-((u - centre[0]) ** 2 + (v - centre[1]) ** 2) / (2 * 5.0**2)))
    Image.fromarray(np.round(blob).astype(np.uint8)).save(tmp_path / "wide.png")
    result = preprocess_images([tmp_path / "wide.png"], mode="balanced", size=128, patch_size=16)
    t = result.transforms[0]
    assert (t.crop_x, t.crop_width, t.crop_height) == (100, 200, 100)
    H, W = result.images.shape[-2:]
    weight = (1 - result.images[0, 0]).double()
    vm, um = torch.meshgrid(torch.arange(float(H)), torch.arange(float(W)), indexing="ij")
    centroid = torch.stack([(weight * um.double()).sum(), (weight * vm.double()).sum()]) / weight.sum()
    expected = t.original_to_model_points(torch.tensor(centre, dtype=torch.float64))
    assert_close(centroid, expected, atol=0.05, rtol=0)
    back = t.model_to_original_points(expected)
    assert_close(back, torch.tensor(centre, dtype=torch.float64), atol=1e-9, rtol=0)
    assert ImageTransform.from_dict(json.loads(json.dumps(t.to_dict()))) == t
    K = np.array([[100.0, 0, 199.5], [0, 100.0, 49.5], [0, 0, 1]])
    np.testing.assert_allclose(t.intrinsics_to_original(t.intrinsics_to_model(K)), K, atol=1e-9)
