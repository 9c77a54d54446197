import assert from "node:assert/strict";
import {
  formatPhases,
  formatProfile,
  matmul,
  profile,
  profilePhase,
  randn,
  relu,
  scope,
} from "../../mod.ts";

for (const timestamps of [true, false]) {
  Deno.test(`profile() counts every kernel of a block and times it (${timestamps ? "GPU timestamps" : "CPU queue timing"})`, async () => {
    const a = randn([64, 32]);
    const b = randn([32, 48]);
    const { result, report } = await profile(
      () =>
        scope(() => {
          for (let i = 0; i < 3; i++) relu(matmul(a, b));
          return 7;
        }),
      { timestamps },
    );
    assert.equal(result, 7);
    // The matmul may run helper kernels (e.g. packing); the one doing the FLOPs is the product.
    const mm = report.kernels.find((k) => k.name.startsWith("matmul") && k.flops > 0);
    const r = report.kernels.find((k) => k.name === "unary_relu");
    assert.ok(mm && r, `kernels: ${report.kernels.map((k) => k.name)}`);
    assert.equal(mm.calls, 3);
    assert.equal(r.calls, 3);
    assert.equal(mm.flops, 3 * 2 * 64 * 32 * 48);
    assert.ok(report.kernels.every((k) => k.totalMs >= 0));
    const total = report.kernels.reduce((a, k) => a + k.totalMs, 0);
    assert.ok(total > 0, "some kernel time was measured");
    assert.ok(report.wallMs > 0);
    const table = formatProfile(report);
    assert.match(table, /kernel\s+calls\s+total ms\s+mean ms\s+GFLOP\/s\s+GB\/s/);
    assert.match(table, /unary_relu\s+3/);
    a.dispose();
    b.dispose();
  });
}

Deno.test("flopCount() adds every kernel's FLOPs, all finite, through a ResNet's strided backward", async () => {
  const { crossEntropy, flopCount, models, optim, tensor } = await import("../../mod.ts");
  const { setDispatchObserver } = await import("../../engine/dispatch.ts");
  const bad = new Set<string>();
  let declared = 0;
  setDispatchObserver({
    onDispatch(name, flops) {
      if (!Number.isFinite(flops)) bad.add(name);
      declared += flops;
      return undefined;
    },
    beforeSubmit() {},
    afterSubmit() {},
    syncEach: false,
  });
  const before = flopCount();
  try {
    const net = models.resnet18({ numClasses: 3, cifarStem: true, baseChannels: 4, inChannels: 1 });
    const opt = new optim.SGD(net.parameters(), { lr: 0.1, momentum: 0.9 });
    scope(() => {
      const y = tensor(new Int32Array(2), { dtype: "i32" });
      crossEntropy(net.forward(randn([2, 1, 12, 12])), y).backward();
      opt.step();
    });
    net.dispose();
  } finally {
    setDispatchObserver(null);
  }
  const counted = flopCount() - before;
  assert.deepEqual([...bad], [], "kernels that declared non-finite FLOPs");
  assert.ok(Number.isFinite(counted) && counted > 0);
  assert.ok(Math.abs(counted - declared) <= 1e-9 * declared, `${counted} vs ${declared}`);
});

for (const timestamps of [true, false]) {
  Deno.test(`profilePhase() labels the kernels that follow, and formatPhases() sums each phase (${timestamps ? "GPU timestamps" : "CPU queue timing"})`, async () => {
    const a = randn([64, 32]);
    const b = randn([32, 48]);
    profilePhase("outside"); // no profile running: ignored
    const { report } = await profile(() =>
      scope(() => {
        profilePhase("one");
        matmul(a, b);
        profilePhase("two");
        relu(a);
        relu(b);
      }), { timestamps });
    const by = (p: string) => report.kernels.filter((k) => k.phase === p);
    assert.deepEqual(by("one").map((k) => [k.name, k.calls]), [["matmul", 1]]);
    assert.deepEqual(by("two").map((k) => [k.name, k.calls]), [["unary_relu", 2]]);
    assert.equal(report.kernels.length, 2);
    const text = formatPhases(report);
    assert.match(text, /^phase\s+kernel\s+calls\s+ms\s+share/);
    assert.match(text, /\ntwo\s+\(all\)\s+2\s/);
    assert.match(text, /\nall\s+\(all\)\s+3\s.*100\.0%/);
    a.dispose();
    b.dispose();
  });
}
