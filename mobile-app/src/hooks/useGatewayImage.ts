import { useContext, useEffect, useState } from 'react';
import { Platform, type ImageURISource } from 'react-native';

import { ClientContext } from './ClientContext';

/**
 * An image source for a protected gateway link. Phones send the API key as an image header; a browser's
 * <img> cannot, so on the web the bytes are fetched with the key and shown from an object URL.
 */
export function useGatewayImage(link: string | null): ImageURISource | null {
  const client = useContext(ClientContext);
  const web = Platform.OS === 'web';
  const [objectUrl, setObjectUrl] = useState<string | null>(null);

  useEffect(() => {
    if (!web || !client || !link) return;
    let live = true;
    let created: string | null = null;
    client
      .fetchImage(link)
      .then((blob) => {
        if (!live) return;
        created = URL.createObjectURL(blob);
        setObjectUrl(created);
      })
      .catch(() => live && setObjectUrl(null));
    return () => {
      live = false;
      if (created) URL.revokeObjectURL(created);
    };
  }, [web, client, link]);

  if (!link || !client) return null;
  if (web) return objectUrl ? { uri: objectUrl } : null;
  return { uri: client.resolve(link), headers: client.imageHeaders() };
}
