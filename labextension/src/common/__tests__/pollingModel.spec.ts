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

  get value(): number | null {
    return this.applied.length ? this.applied[this.applied.length - 1].value : null;
  }

  /** Run one request outside the poll, as a subclass does after an action. */
  loadNow(): Promise<void> {
    return this.load();
  }

  protected async request(): Promise<number> {
    this.requests++;
    if (this.failure !== null) {
      throw this.failure;
    }
    return this.server;
  }

  protected apply(answer: number, first: boolean): void {
    this.applied.push({ value: answer, first });
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

describe('asError', () => {
  it('keeps Errors and wraps anything else', () => {
    const error = new TypeError('bad');
    expect(asError(error)).toBe(error);
    expect(asError(42).message).toBe('42');
  });
});
