// The vulkan backend itself: device choice, memory, copies through the staging rings, weights.
#include <catch2/catch.hpp>

#include <cstring>
#include <numeric>

#include <semline/error.h>

#include "vulkan/vulkan_test_util.h"

using namespace semline;
using namespace semline::vktest;

TEST_CASE("the backend probes clean and names its device (needs a Vulkan device)", "[backend]") {
  SEMLINE_REQUIRE_VULKAN();
  const RecordingRegistry& r = vulkan_entries();
  REQUIRE(r.backends.size() == 1);
  CHECK(r.backends[0].name == "vulkan");
  CHECK(r.backends[0].probe().empty());
  auto be = make_backend();
  const BackendInfo info = be->info();
  CHECK(info.name == "vulkan");
  CHECK(!info.device.empty());
  CHECK(info.memory_bytes > 0);
  CHECK(be->host_threads() == 1);
  int64_t covered = 0;
  be->parallel_for(37, [&](int64_t b, int64_t e) { covered += e - b; });
  CHECK(covered == 37);
}

TEST_CASE("device choice: by index, by name, and clear errors for neither (needs a Vulkan device)", "[backend]") {
  SEMLINE_REQUIRE_VULKAN();
  const std::string name = make_backend()->device().caps.name;
  // One options value per case: reassigning a string field trips a GCC 12 -Wrestrict false positive.
  auto on = [](std::string device) {
    vk::BackendOptions o;
    o.device = std::move(device);
    return o;
  };
  CHECK(vk::VulkanBackend(on(name.substr(0, 4))).device().caps.name.rfind(name.substr(0, 4), 0) == 0);
  CHECK_NOTHROW(vk::VulkanBackend(on("0")));
  CHECK_THROWS_WITH(vk::VulkanBackend(on("no-such-gpu-anywhere")),
                    Catch::Contains("no device name contains \"no-such-gpu-anywhere\"") && Catch::Contains(name));
  CHECK_THROWS_WITH(vk::VulkanBackend(on("97")), Catch::Contains("device = \"97\" is out of range"));
}

TEST_CASE("buffers are device-local, zeroed, and round-trip through copies of any size (needs a Vulkan device)",
          "[backend]") {
  SEMLINE_REQUIRE_VULKAN();
  // Rings of 4 KiB: bigger copies go in chunks, each full ring submits and waits mid-stream.
  auto be = make_backend(true, 4096);
  auto buf = be->alloc(100000);
  CHECK(buf->host() == nullptr);
  CHECK(buf->size() == 100000);
  CHECK(&buf->backend() == be.get());
  Tensor all = make_tensor(DType::F32, {25000}, nullptr, buf.get());
  std::vector<float> zeros = read_back(*be, all);
  CHECK(std::all_of(zeros.begin(), zeros.end(), [](float v) { return v == 0.0f; }));

  std::vector<float> data = random_floats(25000);
  const std::vector<float> original = data;
  be->copy_to_device(data.data(), all, data.size() * 4, be->stream());
  data.assign(data.size(), 0.0f);  // the copy took the bytes at once: the caller's memory is free
  std::vector<float> back(25000, -1.0f);
  Tensor middle = make_tensor(DType::F32, {1000}, nullptr, buf.get(), 4 * 12000);
  std::vector<float> part(1000);
  be->copy_to_host(all, back.data(), back.size() * 4, be->stream());
  be->copy_to_host(middle, part.data(), part.size() * 4, be->stream());
  const uint64_t before = be->vstream().submissions();
  be->stream().synchronize();
  CHECK(be->vstream().submissions() > before);
  CHECK(std::equal(part.begin(), part.end(), back.begin() + 12000));
  CHECK(back == original);
  be->stream().synchronize();  // nothing recorded: no submission
  const uint64_t idle = be->vstream().submissions();
  be->stream().synchronize();
  CHECK(be->vstream().submissions() == idle);
}

TEST_CASE("copies that do not fit the tensor, or name another backend's memory, are refused (needs a Vulkan device)",
          "[backend]") {
  SEMLINE_REQUIRE_VULKAN();
  auto be = make_backend();
  auto other = make_backend();
  auto buf = be->alloc(64);
  Tensor t = make_tensor(DType::F32, {16}, nullptr, buf.get());
  std::vector<float> host(32);
  CHECK_THROWS_WITH(be->copy_to_device(host.data(), t, 128, be->stream()), Catch::Contains("spans 64 bytes"));
  CHECK_THROWS_WITH(be->copy_to_host(t, host.data(), 128, be->stream()), Catch::Contains("spans 64 bytes"));
  CHECK_THROWS_WITH(other->copy_to_host(t, host.data(), 64, other->stream()),
                    Catch::Contains("not in this backend's memory"));
  CHECK_THROWS_WITH(be->copy_to_host(t, host.data(), 64, other->stream()), Catch::Contains("stream of another backend"));
  Tensor bare = make_tensor(DType::F32, {16}, host.data());
  CHECK_THROWS_WITH(be->copy_to_device(host.data(), bare, 64, be->stream()), Catch::Contains("not in this backend"));
  CHECK_THROWS_WITH(be->alloc(size_t{1} << 40), Catch::Contains("maxStorageBufferRange"));
}

TEST_CASE("a weight is copied to the device once and reads back byte for byte (needs a Vulkan device)", "[backend]") {
  SEMLINE_REQUIRE_VULKAN();
  auto be = make_backend();
  for (DType dt : {DType::F32, DType::F16, DType::Q8_0, DType::Q4_0}) {
    INFO(dtype_name(dt));
    const Weight w = make_weight(dt, 96, 7, 1.0f);
    const Tensor host = make_tensor(dt, {96, 7}, const_cast<void*>(w.data()));
    const size_t before = be->weight_bytes();
    const Tensor a = be->upload_weight(host);
    const Tensor b = be->upload_weight(host);
    const size_t bytes = static_cast<size_t>(dtype_row_bytes(dt, 96) * 7);
    CHECK(be->weight_bytes() - before == bytes);
    CHECK(a.buffer == b.buffer);
    CHECK(a.offset == b.offset);
    CHECK(a.host == nullptr);
    CHECK(a.buffer->host() == nullptr);
    std::vector<char> back(bytes);
    be->copy_to_host(a, back.data(), bytes, be->stream());
    be->stream().synchronize();
    CHECK(std::memcmp(back.data(), w.data(), bytes) == 0);
  }
  const Tensor no_host = make_tensor(DType::F32, {4});
  CHECK_THROWS_WITH(be->upload_weight(no_host), Catch::Contains("no host address"));
}

TEST_CASE("freeing a buffer with recorded work finishes that work first (needs a Vulkan device)", "[backend]") {
  SEMLINE_REQUIRE_VULKAN();
  auto be = make_backend();
  std::vector<float> data = random_floats(256), back(256, 0.0f);
  {
    auto buf = be->alloc(1024);
    Tensor t = make_tensor(DType::F32, {256}, nullptr, buf.get());
    be->copy_to_device(data.data(), t, 1024, be->stream());
    be->copy_to_host(t, back.data(), 1024, be->stream());
    CHECK(!be->vstream().idle());
  }
  CHECK(be->vstream().idle());
  CHECK(back == data);
}
