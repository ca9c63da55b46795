import { JSONValue } from '@lumino/coreutils';
import { Poll } from '@lumino/polling';

import { asError, PollingModel } from '../pollingModel';

const FAST = 10;
const SLOW = 50;

/** A polled counter: each request answers the server's current count (or its error). */
class CounterModel extends PollingModel<number> {
  constructor(options: Partial<PollingModel.IOptions> = {}) {
    super({
      name: 'test:counter',
      interval: FAST,
      maxInterval: 1000,
      standby: 'never',
      ...options
    });
  }

  server = 0;
  failure: unknown = null;
  requests = 0;
  applied: Array<{ value: number; first: boolean }> = [];
  /** Answers below this are dropped as stale. */
  staleBelow = -Infinity;
  /** The interval the data asks for. */
  wanted = FAST;
  /** Skip ticks while set, whatever the options say. */
  paused = false;
  /** The server's fingerprint; null: the model has no probe. */
  print: JSONValue | null = null;
  probes = 0;
  probeFailure: unknown = null;
  /** What apply answers (undefined: changed). */
  applyAnswer: boolean | undefined = undefined;
  /** Delay of each request, in ms (to make answers overtake each other). */
  delays: number[] = [];

  get value(): number | null {
    return this.applied.length ? this.applied[this.applied.length - 1].value : null;
  }

  /** Run one request outside the poll, as a subclass does after an action. */
  loadNow(): Promise<void> {
    return this.load();
  }

  /** Forget what was asked for (a new query), as a subclass does. */
  newQuery(): Promise<void> {
    this.invalidate();
    return this.refresh();
  }

  protected async request(): Promise<number> {
    this.requests++;
    const value = this.server;
    const delay = this.delays.shift();
    if (delay) {
      await sleep(delay);
    }
    if (this.failure !== null) {
      throw this.failure;
    }
    return value;
  }

  protected probe(): Promise<JSONValue> | null {
    if (this.print === null) {
      return null;
    }
    this.probes++;
    const print = this.print;
    return this.probeFailure !== null ? Promise.reject(this.probeFailure) : Promise.resolve(print);
  }

  protected apply(answer: number, first: boolean): boolean | void {
    this.applied.push({ value: answer, first });
    return this.applyAnswer;
  }

  protected isStale(answer: number): boolean {
    return answer < this.staleBelow;
  }

  protected pollInterval(): number {
    return this.wanted;
  }

  protected standby(): boolean | Poll.Standby {
    return this.paused || super.standby();
  }
}

async function until(condition: () => boolean, timeout = 2000): Promise<void> {
  const deadline = Date.now() + timeout;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error('timed out waiting');
    }
    await new Promise(resolve => setTimeout(resolve, 5));
  }
}

const sleep = (ms: number) => new Promise(resolve => setTimeout(resolve, ms));

describe('PollingModel', () => {
  let model: CounterModel;

  afterEach(() => model.dispose());

  /** A model started by hand holding `value`; counts `changed` from then on. */
  async function loadedModel(value: number): Promise<() => number> {
    model = new CounterModel({ autoStart: false });
    model.server = value;
    await model.refresh();
    let changes = 0;
    model.changed.connect(() => changes++);
    return () => changes;
  }

  it('polls on its own once started', async () => {
    model = new CounterModel();
    await until(() => model.requests >= 3);
    expect(model.loading).toBe(false);
    expect(model.error).toBeNull();
  });

  it('does not poll before it is started when autoStart is false', async () => {
    model = new CounterModel({ autoStart: false });
    await sleep(SLOW);
    expect(model.requests).toBe(0);
    expect(model.loading).toBe(true);
    await model.refresh();
    expect(model.requests).toBe(1);
    expect(model.loading).toBe(false);
  });

  it('stops polling when disposed', async () => {
    model = new CounterModel();
    await until(() => model.requests >= 1);
    let changes = 0;
    model.changed.connect(() => changes++);
    model.dispose();
    const requests = model.requests;
    await sleep(SLOW);
    expect(model.isDisposed).toBe(true);
    expect(model.requests).toBe(requests);
    await model.refresh();
    expect(model.requests).toBe(requests);
    expect(changes).toBe(0);
  });

  it('stands by while the subclass says so, and polls again after', async () => {
    model = new CounterModel();
    await until(() => model.requests >= 1);
    model.paused = true;
    await sleep(2 * FAST);
    const requests = model.requests;
    await sleep(SLOW);
    expect(model.requests).toBe(requests);
    model.paused = false;
    await until(() => model.requests > requests);
  });

  it('emits changed after every completed request and tells the first answer apart', async () => {
    model = new CounterModel({ autoStart: false });
    let changes = 0;
    model.changed.connect(() => changes++);
    model.server = 1;
    await model.refresh();
    model.server = 2;
    await model.refresh();
    expect(changes).toBe(2);
    expect(model.applied).toEqual([
      { value: 1, first: true },
      { value: 2, first: false }
    ]);
    expect(model.fetchedAt).toBeGreaterThan(0);
  });

  it('surfaces a failed request, keeps the data, and clears the error on success', async () => {
    const changes = await loadedModel(7);
    model.failure = new Error('server down');
    await model.refresh();
    expect(model.error?.message).toBe('server down');
    expect(model.value).toBe(7);
    expect(changes()).toBe(1);
    model.failure = null;
    await model.refresh();
    expect(model.error).toBeNull();
  });

  it('ends loading with an error when the first request fails, and wraps non-Errors', async () => {
    model = new CounterModel({ autoStart: false });
    model.failure = 'refused';
    await model.refresh();
    expect(model.loading).toBe(false);
    expect(model.error).toBeInstanceOf(Error);
    expect(model.error?.message).toBe('refused');
  });

  it('rejects a direct load that fails, so the caller (or the poll) sees it', async () => {
    model = new CounterModel({ autoStart: false });
    model.failure = new Error('boom');
    await expect(model.loadNow()).rejects.toThrow('boom');
    expect(model.error?.message).toBe('boom');
  });

  it('drops stale answers without emitting changed', async () => {
    const changes = await loadedModel(5);
    model.staleBelow = 6;
    await model.refresh();
    expect(model.applied).toHaveLength(1);
    expect(changes()).toBe(0);
  });

  it('moves the poll to the interval the data asks for', async () => {
    model = new CounterModel({ autoStart: false, interval: FAST });
    expect(model.interval).toBe(FAST);
    model.wanted = SLOW;
    await model.refresh();
    expect(model.interval).toBe(SLOW);
  });
});

describe('PollingModel live: probe, back-off, visibility, nudges', () => {
  let model: CounterModel;

  afterEach(() => model.dispose());

  it('asks only the probe while the fingerprint stays the same, backing off up to idleInterval', async () => {
    model = new CounterModel({ autoStart: false, idleInterval: 4 * FAST });
    model.print = 'a';
    await model.refresh();
    // The first load takes the fingerprint before the data.
    expect([model.probes, model.requests]).toEqual([1, 1]);
    let changes = 0;
    model.changed.connect(() => changes++);
    await until(() => model.probes >= 6);
    expect(model.requests).toBe(1);
    expect(changes).toBe(0);
    expect(model.interval).toBe(4 * FAST);
    expect(model.checkedAt).toBeGreaterThanOrEqual(model.fetchedAt);
  });

  it('requests the data when the fingerprint changes, and starts over from the short interval', async () => {
    model = new CounterModel({ autoStart: false, idleInterval: 4 * FAST });
    model.print = 'a';
    await model.refresh();
    await until(() => model.interval === 4 * FAST);
    let changes = 0;
    model.changed.connect(() => changes++);
    model.server = 2;
    model.print = 'b';
    await until(() => model.value === 2);
    expect(changes).toBe(1);
    expect(model.interval).toBe(FAST);
    // No second request for the same change.
    const requests = model.requests;
    await sleep(SLOW);
    expect(model.requests).toBe(requests);
  });

  it('backs off without emitting changed when apply says nothing changed', async () => {
    model = new CounterModel({ autoStart: false, idleInterval: 4 * FAST });
    await model.refresh();
    let changes = 0;
    model.changed.connect(() => changes++);
    model.applyAnswer = false;
    await model.refresh();
    await model.refresh();
    expect(changes).toBe(0);
    expect(model.interval).toBe(4 * FAST);
    model.applyAnswer = undefined;
    await model.refresh();
    expect(changes).toBe(1);
    expect(model.interval).toBe(FAST);
  });

  it('asks nothing while not visible, and checks at once when shown again', async () => {
    model = new CounterModel({ visible: false });
    await sleep(SLOW);
    expect(model.requests + model.probes).toBe(0);
    model.visible = true;
    await until(() => model.requests === 1);
    model.print = 'x';
    model.visible = false;
    await sleep(2 * FAST);
    const asked = model.requests + model.probes;
    await sleep(SLOW);
    expect(model.requests + model.probes).toBe(asked);
    model.visible = true;
    await until(() => model.requests + model.probes > asked);
  });

  it('nudge checks now and returns to the short interval; a hidden model checks when shown', async () => {
    model = new CounterModel({ autoStart: false, interval: FAST, idleInterval: 1000 });
    model.print = 'a';
    await model.refresh();
    model.applyAnswer = false;
    await until(() => model.interval >= 4 * FAST);
    const probes = model.probes;
    model.nudge();
    expect(model.interval).toBe(FAST);
    await until(() => model.probes > probes);
    model.visible = false;
    await sleep(2 * FAST);
    const hidden = model.probes;
    model.nudge();
    await sleep(SLOW);
    expect(model.probes).toBe(hidden);
    model.visible = true;
    await until(() => model.probes > hidden);
  });

  it('drops answers to requests made before invalidate', async () => {
    model = new CounterModel({ autoStart: false });
    model.server = 1;
    model.delays = [3 * FAST];
    const old = model.refresh();
    await sleep(FAST / 2);
    model.server = 2;
    await model.newQuery();
    await old;
    await sleep(4 * FAST);
    // (Later values are the poll's own ticks.)
    expect(model.applied.map(a => a.value)).not.toContain(1);
    expect(model.applied[0]).toEqual({ value: 2, first: true });
  });

  it('drops an older answer that arrives after a newer one', async () => {
    model = new CounterModel({ autoStart: false });
    model.server = 1;
    model.delays = [3 * FAST];
    const slow = model.loadNow();
    await sleep(FAST / 2);
    model.server = 2;
    await model.loadNow();
    await slow;
    expect(model.applied.map(a => a.value)).toEqual([2]);
  });

  it('a refresh while the data is being requested for the same question waits for that answer', async () => {
    model = new CounterModel({ autoStart: false });
    model.server = 1;
    model.delays = [3 * FAST];
    const first = model.refresh();
    await sleep(FAST / 2);
    await model.refresh();
    expect(model.requests).toBe(1);
    expect(model.value).toBe(1);
    await first;
  });

  it('requests the data every reloadEvery even when the probe sees no change', async () => {
    model = new CounterModel({ autoStart: false, idleInterval: FAST, reloadEvery: 3 * FAST });
    model.print = 'same';
    await model.refresh();
    await until(() => model.requests >= 3, 3000);
    expect(model.probes).toBeGreaterThan(model.requests);
  });

  it('shows a failed probe as the error, and clears it once the probe answers again', async () => {
    model = new CounterModel({ autoStart: false });
    model.print = 'a';
    await model.refresh();
    model.probeFailure = new Error('service down');
    await until(() => model.error !== null);
    expect(model.error?.message).toBe('service down');
    expect(model.value).toBe(0);
    model.probeFailure = null;
    await until(() => model.error === null, 5000);
    expect(model.requests).toBe(1);
  });
});

describe('asError', () => {
  it('keeps Errors and wraps anything else', () => {
    const error = new TypeError('bad');
    expect(asError(error)).toBe(error);
    expect(asError(42).message).toBe('42');
  });
});
