import { InfinStorRequestError } from '../../common/request';
import {
  DEFAULT_POLL_INTERVAL,
  MIN_POLL_INTERVAL,
  STARTING_POLL_INTERVAL,
  StatusModel
} from '../model';
import { IStatus } from '../status';

function makeStatus(state: string, version = '0.1.0'): IStatus {
  return {
    version,
    tracking: {
      mode: 'embedded',
      state,
      message: state === 'running' ? '' : `MLflow is ${state}`,
      uri: 'http://127.0.0.1:5123',
      mlflow_version: '3.17.2'
    },
    user: { signed_in: false, name: 'local', display_name: 'local' }
  };
}

/**
 * A fetchStatus stub answering from a queue (the last answer repeats).
 */
function queue(...answers: Array<IStatus | Error>) {
  const fn = jest.fn(async () => {
    const next = answers.length > 1 ? answers.shift()! : answers[0];
    if (next instanceof Error) {
      throw next;
    }
    return next;
  });
  return fn;
}

describe('StatusModel', () => {
  let model: StatusModel | null = null;

  afterEach(() => {
    model?.dispose();
    model = null;
    jest.useRealTimers();
  });

  it('starts in the loading state', () => {
    model = new StatusModel({ fetchStatus: queue(makeStatus('running')), autoStart: false });
    expect(model.loading).toBe(true);
    expect(model.status).toBeNull();
    expect(model.error).toBeNull();
    expect(model.lastUpdated).toBeNull();
    expect(model.interval).toBe(DEFAULT_POLL_INTERVAL);
  });

  it('stores the status and emits changed on refresh', async () => {
    const fetchStatus = queue(makeStatus('running'));
    model = new StatusModel({ fetchStatus, autoStart: false });
    const changed = jest.fn();
    model.changed.connect(changed);

    await model.refresh();

    expect(fetchStatus).toHaveBeenCalledTimes(1);
    expect(changed).toHaveBeenCalledTimes(1);
    expect(model.loading).toBe(false);
    expect(model.status?.tracking.state).toBe('running');
    expect(model.error).toBeNull();
    expect(model.lastUpdated).toBeInstanceOf(Date);
  });

  it('records errors, keeps the last status and backs off', async () => {
    const fetchStatus = queue(
      makeStatus('running'),
      new InfinStorRequestError('boom', { status: 500, reason: 'internal' })
    );
    model = new StatusModel({ fetchStatus, autoStart: false });

    await model.refresh();
    await model.refresh();

    expect(model.error).toBeInstanceOf(InfinStorRequestError);
    expect(model.error?.message).toBe('boom');
    expect(model.status?.tracking.state).toBe('running');
    expect(model.serverExtensionMissing).toBe(false);
    // A rejected tick puts the poll in the back-off phase.
    expect(model.poll.state.phase).toBe('rejected');
  });

  it('backs off while requests keep failing', async () => {
    jest.useFakeTimers();
    // Lumino picks a random interval in [interval, last interval * 3]: take the top.
    const random = jest.spyOn(Math, 'random').mockReturnValue(0.999);
    try {
      const failing = queue(new Error('offline'));
      model = new StatusModel({ fetchStatus: failing, interval: 2000, standby: 'never' });
      await jest.advanceTimersByTimeAsync(60 * 1000);
      // Without back-off it would be about 30 requests.
      expect(failing.mock.calls.length).toBeGreaterThanOrEqual(3);
      expect(failing.mock.calls.length).toBeLessThanOrEqual(12);
      expect(model.poll.state.phase).toBe('rejected');
      expect(model.poll.state.interval).toBeGreaterThan(10 * 2000);

      // It recovers at the normal pace once the server answers again.
      model.dispose();
      const recovering = queue(new Error('offline'), makeStatus('running'));
      model = new StatusModel({ fetchStatus: recovering, interval: 2000, standby: 'never' });
      await jest.advanceTimersByTimeAsync(60 * 1000);
      expect(recovering.mock.calls.length).toBeGreaterThan(20);
    } finally {
      random.mockRestore();
    }
  });

  it('clears the error after a successful request', async () => {
    const fetchStatus = queue(new Error('offline'), makeStatus('running'));
    model = new StatusModel({ fetchStatus, autoStart: false });

    await model.refresh();
    expect(model.error?.message).toBe('offline');
    expect(model.status).toBeNull();
    expect(model.loading).toBe(false);

    await model.refresh();
    expect(model.error).toBeNull();
    expect(model.status?.tracking.state).toBe('running');
  });

  it('wraps non-Error rejections', async () => {
    model = new StatusModel({
      fetchStatus: () => Promise.reject('nope'),
      autoStart: false
    });
    await model.refresh();
    expect(model.error).toBeInstanceOf(Error);
    expect(model.error?.message).toBe('nope');
  });

  it('detects a missing server extension (404)', async () => {
    model = new StatusModel({
      fetchStatus: queue(new InfinStorRequestError('Not Found', { status: 404 })),
      autoStart: false
    });
    await model.refresh();
    expect(model.serverExtensionMissing).toBe(true);
  });

  it('polls fast while the service is starting, then slows down', async () => {
    const fetchStatus = queue(makeStatus('starting'), makeStatus('running'));
    model = new StatusModel({ fetchStatus, autoStart: false, interval: 10000 });

    await model.refresh();
    expect(model.poll.frequency.interval).toBe(STARTING_POLL_INTERVAL);

    await model.refresh();
    expect(model.poll.frequency.interval).toBe(10000);
  });

  it('applies a new interval and clamps it to the minimum', () => {
    model = new StatusModel({ fetchStatus: queue(makeStatus('running')), autoStart: false });
    model.interval = 30000;
    expect(model.interval).toBe(30000);
    expect(model.poll.frequency.interval).toBe(30000);
    model.interval = 500;
    expect(model.interval).toBe(MIN_POLL_INTERVAL);
    model.interval = Number.NaN;
    expect(model.interval).toBe(DEFAULT_POLL_INTERVAL);
  });

  it('polls on its own at the configured interval', async () => {
    jest.useFakeTimers();
    const fetchStatus = queue(makeStatus('running'));
    model = new StatusModel({ fetchStatus, interval: 5000, standby: 'never' });

    await jest.advanceTimersByTimeAsync(100);
    expect(fetchStatus).toHaveBeenCalledTimes(1);

    await jest.advanceTimersByTimeAsync(5000);
    expect(fetchStatus).toHaveBeenCalledTimes(2);

    await jest.advanceTimersByTimeAsync(3 * 5000);
    expect(fetchStatus).toHaveBeenCalledTimes(5);
  });

  it('polls every second while starting', async () => {
    jest.useFakeTimers();
    const fetchStatus = queue(
      makeStatus('starting'),
      makeStatus('starting'),
      makeStatus('running')
    );
    model = new StatusModel({ fetchStatus, interval: 10000, standby: 'never' });

    await jest.advanceTimersByTimeAsync(100); // starting
    await jest.advanceTimersByTimeAsync(1000); // starting
    await jest.advanceTimersByTimeAsync(1000); // running
    expect(fetchStatus).toHaveBeenCalledTimes(3);
    expect(model.status?.tracking.state).toBe('running');

    await jest.advanceTimersByTimeAsync(5000);
    expect(fetchStatus).toHaveBeenCalledTimes(3);
    await jest.advanceTimersByTimeAsync(5000);
    expect(fetchStatus).toHaveBeenCalledTimes(4);
  });

  it('updateTracking replaces the tracking status', async () => {
    model = new StatusModel({ fetchStatus: queue(makeStatus('error')), autoStart: false });
    await model.refresh();
    const changed = jest.fn();
    model.changed.connect(changed);
    model.updateTracking(makeStatus('starting').tracking);
    expect(model.status?.tracking.state).toBe('starting');
    expect(model.poll.frequency.interval).toBe(STARTING_POLL_INTERVAL);
    expect(changed).toHaveBeenCalledTimes(1);
  });

  it('stops polling when disposed', async () => {
    jest.useFakeTimers();
    const fetchStatus = queue(makeStatus('running'));
    model = new StatusModel({ fetchStatus, interval: 2000, standby: 'never' });
    await jest.advanceTimersByTimeAsync(100);
    expect(fetchStatus).toHaveBeenCalledTimes(1);

    model.dispose();
    expect(model.isDisposed).toBe(true);
    expect(model.poll.isDisposed).toBe(true);
    await jest.advanceTimersByTimeAsync(10000);
    expect(fetchStatus).toHaveBeenCalledTimes(1);
    await model.refresh(); // no-op, does not throw
    model.dispose(); // idempotent
  });
});
