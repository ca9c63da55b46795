import { TranslationBundle } from '@jupyterlab/translation';
import { Button } from '@jupyterlab/ui-components';
import React from 'react';

import { signedInLabel, SignInController, signInState, userDetails } from './controller';
import { IStatus, userLabel } from '../status/status';

/**
 * Re-render when the controller's state changes.
 */
function useController(controller: SignInController | undefined): void {
  const [, setTick] = React.useState(0);
  React.useEffect(() => {
    if (!controller) {
      return;
    }
    const onChange = () => setTick(tick => tick + 1);
    controller.changed.connect(onChange);
    return () => {
      controller.changed.disconnect(onChange);
    };
  }, [controller]);
}

/**
 * The user section of the sidebar: who works with the tracking service, and
 * the sign-in / sign-out buttons when an identity provider is configured.
 */
export function UserSection(props: {
  status: IStatus;
  trans: TranslationBundle;
  signIn?: SignInController;
}): JSX.Element {
  const { status, trans, signIn } = props;
  useController(signIn);
  const state = signInState(status);
  const user = status.user;
  const busy = signIn?.busy ?? null;
  const signedIn = state.phase === 'signed-in';
  const details = signedIn ? userDetails(user) : '';
  const fullName = signedInLabel(user);

  return (
    <section
      className="jp-InfinStor-section jp-InfinStor-userSection"
      aria-labelledby="infinstor-user-heading"
      data-phase={state.phase}
    >
      <h3 id="infinstor-user-heading" className="jp-InfinStor-sectionTitle">
        {trans.__('User')}
      </h3>
      <dl className="jp-InfinStor-fields">
        <dt>{signedIn ? trans.__('Signed in as') : trans.__('Working as')}</dt>
        <dd>
          <span
            data-testid="infinstor-user"
            className="jp-InfinStor-user"
            title={signedIn ? fullName : undefined}
          >
            {userLabel(user)}
          </span>
          {signedIn && user.name && user.name !== userLabel(user) && (
            <span className="jp-InfinStor-hint" data-testid="infinstor-user-name">
              {' '}
              ({user.name})
            </span>
          )}
          {!signedIn && (
            <span className="jp-InfinStor-hint">
              {' '}
              {trans.__('(not signed in)')}
            </span>
          )}
        </dd>
      </dl>
      {details && (
        <p
          className="jp-InfinStor-userDetails"
          data-testid="infinstor-user-details"
          title={details}
        >
          {details}
        </p>
      )}
      {state.phase === 'signed-out' && (
        <p className="jp-InfinStor-hint jp-InfinStor-signInHint">
          {trans.__('Sign in to use the tracking service as yourself.')}
        </p>
      )}
      {signIn && (state.canSignIn || state.canSignOut) && (
        <div className="jp-InfinStor-userActions">
          {state.canSignIn && (
            <Button
              className="jp-mod-styled jp-mod-accept"
              data-testid="infinstor-sign-in"
              disabled={busy === 'sign-out'}
              onClick={() => signIn.signIn()}
            >
              {busy === 'sign-in'
                ? trans.__('Signing in… (see the sign-in window)')
                : trans.__('Sign in')}
            </Button>
          )}
          {state.canSignOut && (
            <Button
              className="jp-mod-styled jp-mod-reject"
              data-testid="infinstor-sign-out"
              disabled={busy !== null}
              onClick={() => void signIn.signOut()}
            >
              {busy === 'sign-out' ? trans.__('Signing out…') : trans.__('Sign out')}
            </Button>
          )}
        </div>
      )}
      {signIn?.error && (
        <div
          className="jp-InfinStor-banner jp-InfinStor-banner-error jp-InfinStor-signInError"
          role="alert"
          data-testid="infinstor-sign-in-error"
        >
          <p>{signIn.error}</p>
          {signIn.blockedUrl && (
            <p>
              <a
                href={signIn.blockedUrl}
                target="_blank"
                rel="opener"
                data-testid="infinstor-sign-in-link"
              >
                {trans.__('Open the sign-in page')}
              </a>
            </p>
          )}
        </div>
      )}
    </section>
  );
}
